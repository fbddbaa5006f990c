// Package sources says which files the embedded WebAssembly module is built
// from and digests them, so that the generator can record what it built and
// a test can fail when core/ (or the guest) changed without a rebuild.
package sources

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dirs are the module-relative directories whose Go files (tests aside) make
// up the guest: the core itself, the guest's exports and the encoding.
var Dirs = []string{"core", "hosts/wasm/guest", "hosts/wasm/internal/abi"}

// Root finds the Go module's root by walking up from dir to go.mod.
func Root(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Digest returns the hex SHA-256 over the names and contents of the guest's
// source files under root, in a fixed order.
func Digest(root string) (string, error) {
	var files []string
	for _, d := range Dirs {
		matches, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(d), "*.go"))
		if err != nil {
			return "", err
		}
		for _, m := range matches {
			if !strings.HasSuffix(m, "_test.go") {
				files = append(files, m)
			}
		}
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no guest sources under %s", root)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			return "", err
		}
		content, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("digesting guest sources: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(content))
		h.Write(content)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
