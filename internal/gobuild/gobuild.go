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
// out, with flags (such as -ldflags) before pkg. The binary is static
// (CGO_ENABLED=0): the e2e tests copy it into FROM scratch images, and the
// bench compares it with host-local as its releases ship it, without the
// dynamic loader's cost on every exec.
// The caller sets Dir, Stdout and Stderr as it needs and runs it.
func Command(ctx context.Context, out, pkg string, flags ...string) *exec.Cmd {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}
