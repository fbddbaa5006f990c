// Package gobuild holds the one go build invocation of the project, used
// at run time by "etcd-ipam demo" and "etcd-ipam bench" and by tests
// (through internal/testbin and internal/kubetest), so that every binary
// they run is built alike.
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
	return CommandWithFlags(ctx, out, nil, append([]string{pkg}, more...)...)
}

// CommandWithFlags is Command with go build flags (such as -ldflags)
// placed before the packages.
func CommandWithFlags(ctx context.Context, out string, flags []string, pkgs ...string) *exec.Cmd {
	args := append(append([]string{"build", "-o", out}, flags...), pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}
