// Package gobuild holds the one go build invocation of the project, used
// at run time by "etcd-ipam demo" and "etcd-ipam bench" and by tests
// (through internal/testbin), so that every binary they run is built alike.
package gobuild

import (
	"context"
	"os"
	"os/exec"
)

// Command returns the command that compiles the main package pkg (an import
// path, resolved in the module of the command's directory) into the file
// out. The binary is static (CGO_ENABLED=0): the e2e tests copy it into
// FROM scratch images, and the bench compares it with host-local as its
// releases ship it, without the dynamic loader's cost on every exec.
// The caller sets Dir, Stdout and Stderr as it needs and runs it.
//
// With more packages, out is a directory ending in a slash, and each
// binary is named after its package's last path element. One command
// compiles the packages' shared dependencies in parallel, where one
// command per package would compile them one package at a time.
func Command(ctx context.Context, out, pkg string, more ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", out, pkg}, more...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}
