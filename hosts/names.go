package hosts

import (
	"fmt"
	"slices"
	"strings"
)

// The names of the core hosts, as ipam "core" and the CLI's --core spell
// them. They live here, beside the interface, so that the loader, the
// host selector and the CLI accept exactly the same names.
const (
	// Native runs the core in the plugin's process; the default, as it
	// costs nothing to start.
	Native = "native"
	// Wasm runs the core as a WebAssembly module.
	Wasm = "wasm"
)

// CoreNames lists the accepted names, the default first.
func CoreNames() []string { return []string{Native, Wasm} }

// CheckCoreName returns an *UnknownCoreError unless name is one of
// CoreNames. The empty name is not: each caller decides what it means.
func CheckCoreName(name string) error {
	if !slices.Contains(CoreNames(), name) {
		return &UnknownCoreError{Name: name}
	}
	return nil
}

// UnknownCoreError reports a name that is not in CoreNames.
type UnknownCoreError struct{ Name string }

func (e *UnknownCoreError) Error() string {
	return fmt.Sprintf("core %q is unknown; use %s", e.Name, strings.Join(quoted(CoreNames()), " or "))
}

// quoted writes names as JSON strings, as a configuration spells them.
func quoted(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%q", n)
	}
	return out
}
