package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/etcd-cni/etcd-ipam/config"
)

// runInstallCmd runs "etcd-ipam install" in-process with args.
func runInstallCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"etcd-ipam", "install"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestInstallReplacesAtomically installs over an existing plugin that a
// reader holds open: the reader keeps the old content (the file was
// replaced by a rename, not rewritten in place, which would also fail with
// "text file busy" while a runtime executes the plugin), the new file is
// executable, and no temporary file is left behind.
func TestInstallReplacesAtomically(t *testing.T) {
	srcDir, dest := t.TempDir(), t.TempDir()
	source := filepath.Join(srcDir, "etcd")
	if err := os.WriteFile(source, []byte("new plugin"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dest, "etcd")
	if err := os.WriteFile(target, []byte("old plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	old, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	code, stdout, stderr := runInstallCmd(t, "--source", source, "--dest", dest)
	if code != 0 {
		t.Fatalf("install exited %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, target) {
		t.Errorf("stdout %q does not name the installed file %s", stdout, target)
	}
	got, err := os.ReadFile(target)
	if err != nil || string(got) != "new plugin" {
		t.Fatalf("installed file holds %q (%v), want the source's content", got, err)
	}
	info, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o755 {
		t.Errorf("installed file mode %v, want 0755", info.Mode().Perm())
	}
	held, err := io.ReadAll(old)
	if err != nil || string(held) != "old plugin" {
		t.Errorf("a reader of the old plugin now reads %q (%v): it was overwritten in place", held, err)
	}
	entries, err := os.ReadDir(dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dest holds %q, want only etcd", names)
	}
}

// TestInstallName installs under another file name, for a network whose
// ipam "type" names the plugin differently.
func TestInstallName(t *testing.T) {
	srcDir, dest := t.TempDir(), t.TempDir()
	source := filepath.Join(srcDir, "etcd")
	if err := os.WriteFile(source, []byte("plugin"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runInstallCmd(t, "--source", source, "--dest", dest, "--name", "etcd-ipam"); code != 0 {
		t.Fatalf("install exited %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dest, "etcd-ipam")); err != nil {
		t.Fatal(err)
	}
}

// TestInstallFailures: every failure names what to fix, exits 1 (2 for a
// bad command line) and leaves the destination as it was.
func TestInstallFailures(t *testing.T) {
	srcDir, dest := t.TempDir(), t.TempDir()
	source := filepath.Join(srcDir, "etcd")
	if err := os.WriteFile(source, []byte("plugin"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		mentions string
	}{
		{"missing source", []string{"--source", filepath.Join(srcDir, "nosuch"), "--dest", dest}, 1, "nosuch"},
		{"source is a directory", []string{"--source", srcDir, "--dest", dest}, 1, "not a regular file"},
		{"missing dest", []string{"--source", source, "--dest", filepath.Join(dest, "nosuch")}, 1, "nosuch"},
		{"dest is a file", []string{"--source", source, "--dest", source}, 1, "not a directory"},
		{"name with a slash", []string{"--source", source, "--dest", dest, "--name", "../etcd"}, 2, "plain file name"},
		{"positional argument", []string{"--source", source, "--dest", dest, "extra"}, 2, "extra"},
	} {
		code, _, stderr := runInstallCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.mentions) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", tc.name, code, stderr, tc.code, tc.mentions)
		}
	}
	entries, err := os.ReadDir(dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("failed installs left %d files in dest", len(entries))
	}
}

// TestInstallWaitKeepsRunningUntilStopped: the DaemonSet's container runs
// install --wait, which must install first and then return only when the
// container is stopped (its context cancelled), with success.
func TestInstallWaitKeepsRunningUntilStopped(t *testing.T) {
	srcDir, dest := t.TempDir(), t.TempDir()
	source := filepath.Join(srcDir, "etcd")
	if err := os.WriteFile(source, []byte("plugin"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan int, 1)
	var out, errOut bytes.Buffer
	go func() {
		done <- run(ctx, []string{"etcd-ipam", "install", "--wait", "--source", source, "--dest", dest}, &out, &errOut)
	}()
	target := filepath.Join(dest, "etcd")
	installed := false
	for i := 0; i < 500 && !installed; i++ {
		select {
		case code := <-done:
			t.Fatalf("install --wait returned %d before it was stopped: %s", code, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		_, err := os.Stat(target)
		installed = err == nil
	}
	if !installed {
		t.Fatal("install --wait did not install within 5 s")
	}
	select {
	case code := <-done:
		t.Fatalf("install --wait returned %d right after installing", code)
	case <-time.After(50 * time.Millisecond):
	}
	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("install --wait exited %d when stopped: %s", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("install --wait did not return when stopped")
	}
}

// TestInstallRecordsTheNodeName: with --node-name (the DaemonSet passes
// the Kubernetes node name), install records it where the plugin reads
// it, replacing what an earlier install recorded, and the plugin's loader
// then names allocations after it. A name no node can have is a usage
// error that installs nothing.
func TestInstallRecordsTheNodeName(t *testing.T) {
	srcDir, dest, state := t.TempDir(), t.TempDir(), t.TempDir()
	source := filepath.Join(srcDir, "etcd")
	if err := os.WriteFile(source, []byte("plugin"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(state, "node-name")
	for _, node := range []string{"worker-1", "worker-2.example.org"} {
		code, stdout, stderr := runInstallCmd(t, "--source", source, "--dest", dest, "--node-name", node, "--node-name-file", file)
		if code != 0 || !strings.Contains(stdout, node) {
			t.Fatalf("install --node-name %s: exit %d, %s %s", node, code, stdout, stderr)
		}
		got, err := (&config.Network{}).Node(func(k string) string {
			if k == config.NodeNameFileEnv {
				return file
			}
			return ""
		})
		if err != nil || got != node {
			t.Fatalf("after install --node-name %s the plugin's node is %q, %v", node, got, err)
		}
	}
	if entries, _ := os.ReadDir(state); len(entries) != 1 {
		t.Errorf("the node name's directory holds %d files, want the one file", len(entries))
	}

	fresh := t.TempDir()
	code, _, stderr := runInstallCmd(t, "--source", source, "--dest", fresh, "--node-name", "a\nb", "--node-name-file", filepath.Join(fresh, "node-name"))
	if code != 2 || !strings.Contains(stderr, "--node-name") {
		t.Errorf("install --node-name with a newline: exit %d, %q; want a usage error", code, stderr)
	}
	if entries, _ := os.ReadDir(fresh); len(entries) != 0 {
		t.Errorf("a refused install left %d files", len(entries))
	}
}
