package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/internal/testbin"
)

func TestMain(m *testing.M) {
	os.Exit(testbin.Run(m))
}

// TestStopsOnTermOrInt runs the program as a runtime stops a sandbox: it
// keeps running through SIGCHLD, exits 0 on SIGTERM and on SIGINT, and
// refuses arguments.
func TestStopsOnTermOrInt(t *testing.T) {
	bin := testbin.Path(t, "pause", "github.com/etcd-cni/etcd-ipam/e2e/pause")
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(bin)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Give it time to install its handlers, as a runtime does not
		// stop a sandbox the moment it starts.
		time.Sleep(500 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGCHLD)
		select {
		case err := <-done:
			t.Fatalf("exited on SIGCHLD: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		_ = cmd.Process.Signal(sig)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("on %v: %v, want exit status 0", sig, err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("still running 10 s after %v", sig)
		}
	}
	err := exec.Command(bin, "extra").Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 {
		t.Errorf("with an argument: %v, want exit status 2", err)
	}
}
