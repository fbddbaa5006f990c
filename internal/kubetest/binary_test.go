package kubetest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLockWaitsForItsHolder: a second build waits for the first, and gives
// up when its context ends.
func TestLockWaitsForItsHolder(t *testing.T) {
	name := filepath.Join(t.TempDir(), "lock")
	unlock, err := lock(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := lock(short, name); err == nil {
		t.Fatal("took a held lock")
	}

	const hold = 300 * time.Millisecond
	go func() {
		time.Sleep(hold)
		unlock()
	}()
	start := time.Now()
	unlock2, err := lock(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock2()
	if waited := time.Since(start); waited < hold/2 {
		t.Errorf("took the lock after %v, before its holder released it", waited)
	}
}

// TestVersionFlagsStampTheRelease: what clients parse is the release, in
// both packages Kubernetes' build stamps.
func TestVersionFlagsStampTheRelease(t *testing.T) {
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		for _, want := range []string{pkg + ".gitVersion=" + Version, pkg + ".gitMajor=1", pkg + ".gitMinor=37"} {
			if !strings.Contains(versionFlags, "-X "+want) {
				t.Errorf("versionFlags %q lacks -X %s", versionFlags, want)
			}
		}
	}
}
