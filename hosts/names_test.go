package hosts

import (
	"errors"
	"testing"
)

// TestCheckCoreName: the listed names pass, the default first; anything
// else, even the same letters in another case or with a space, is an
// *UnknownCoreError that names it.
func TestCheckCoreName(t *testing.T) {
	if names := CoreNames(); len(names) == 0 || names[0] != Native {
		t.Errorf("CoreNames() = %q, want the default %q first", names, Native)
	}
	for _, name := range CoreNames() {
		if err := CheckCoreName(name); err != nil {
			t.Errorf("CheckCoreName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "WASM", " native", "jit"} {
		var unknown *UnknownCoreError
		if err := CheckCoreName(name); !errors.As(err, &unknown) || unknown.Name != name {
			t.Errorf("CheckCoreName(%q) = %v, want *UnknownCoreError", name, err)
		}
	}
}
