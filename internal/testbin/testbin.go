// Package testbin builds the module's binaries for tests that run them as
// a runtime or an operator would: each binary once per test process, into
// one temporary directory, so that a package's tests share one build and
// the binaries they use together (the plugin, host-local, bridge) lie side
// by side, as CNI_PATH wants them.
package testbin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/etcd-cni/etcd-ipam/internal/gobuild"
)

// built is one binary of the directory, built on first use.
type built struct {
	once sync.Once
	pkg  string
	path string
	err  error
}

var (
	mu     sync.Mutex
	dir    string
	dirErr error
	binary = map[string]*built{}
)

// Build builds the main package pkg (an import path) into a file named name
// on the first call for name, and returns the file's path; later calls
// return the same path, or the same error. Calls for one name must name
// the same package.
func Build(name, pkg string) (string, error) {
	mu.Lock()
	if dir == "" && dirErr == nil {
		dir, dirErr = os.MkdirTemp("", "etcd-ipam-testbin-")
	}
	if dirErr != nil {
		mu.Unlock()
		return "", fmt.Errorf("testbin: %w", dirErr)
	}
	b := binary[name]
	if b == nil {
		b = &built{pkg: pkg, path: filepath.Join(dir, name)}
		binary[name] = b
	}
	mu.Unlock()
	if b.pkg != pkg {
		return "", fmt.Errorf("testbin: %s is built from %s, not %s", name, b.pkg, pkg)
	}
	b.once.Do(func() {
		// No deadline of its own: go test's -timeout bounds a stuck build.
		if msg, err := gobuild.Command(context.Background(), b.path, pkg).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("testbin: go build %s: %v\n%s", pkg, err, msg)
		}
	})
	return b.path, b.err
}

// Path is Build for a test: it fails tb when the build fails.
func Path(tb testing.TB, name, pkg string) string {
	tb.Helper()
	path, err := Build(name, pkg)
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// Run runs the tests and then removes the binaries built for them; a
// package that builds binaries calls it from TestMain:
// os.Exit(testbin.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		_ = os.RemoveAll(dir)
	}
	return code
}
