package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
)

// TestInstallerImage runs the installer image built from images/Dockerfile
// with a temporary directory mounted as the node's CNI bin directory, over
// an older plugin already there, and then executes the plugin it installed.
func TestInstallerImage(t *testing.T) {
	s := requireSuite(t)
	hostBin := t.TempDir()
	if err := os.WriteFile(filepath.Join(hostBin, "etcd"), []byte("#!/bin/sh\necho old plugin\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostBin, "bridge"), []byte("another plugin"), 0o755); err != nil {
		t.Fatal(err)
	}

	c, err := s.pool.Client.CreateContainer(dc.CreateContainerOptions{
		Name:       uniqueName(namePrefix, "installer"),
		Config:     &dc.Config{Image: installerImage, Labels: labels()},
		HostConfig: &dc.HostConfig{Binds: []string{hostBin + ":/host/opt/cni/bin"}, NetworkMode: "none"},
	})
	if err != nil {
		t.Fatalf("creating the installer container: %v", err)
	}
	t.Cleanup(func() {
		if err := s.pool.Client.RemoveContainer(dc.RemoveContainerOptions{ID: c.ID, Force: true}); err != nil {
			t.Errorf("removing the installer container: %v", err)
		}
	})
	if err := s.pool.Client.StartContainer(c.ID, nil); err != nil {
		t.Fatalf("starting the installer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	status, err := s.pool.Client.WaitContainerWithContext(c.ID, ctx)
	if err != nil {
		t.Fatalf("waiting for the installer: %v", err)
	}
	var logs bytes.Buffer
	_ = s.pool.Client.Logs(dc.LogsOptions{Container: c.ID, OutputStream: &logs, ErrorStream: &logs, Stdout: true, Stderr: true, Context: ctx})
	if status != 0 {
		t.Fatalf("the installer exited %d: %s", status, logs.Bytes())
	}
	if !strings.Contains(logs.String(), "/host/opt/cni/bin/etcd") {
		t.Errorf("installer output %q does not name what it installed", logs.String())
	}

	installed := filepath.Join(hostBin, "etcd")
	got, err := os.ReadFile(installed)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(s.binDir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the installed plugin (%d bytes) is not the plugin built for the image (%d bytes)", len(got), len(want))
	}
	if info, err := os.Stat(installed); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("installed plugin mode %v (%v), want 0755", info.Mode().Perm(), err)
	}
	entries, err := os.ReadDir(hostBin)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"bridge", "etcd"}) {
		t.Errorf("the CNI bin directory holds %q, want bridge and etcd only (no temporary file left)", names)
	}

	// The installed plugin runs: CNI's VERSION command.
	cmd := exec.Command(installed)
	cmd.Env = []string{"CNI_COMMAND=VERSION"}
	cmd.Stdin = strings.NewReader(`{"cniVersion": "1.1.0"}`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running the installed plugin: %v: %s", err, out)
	}
	var version struct {
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(out, &version); err != nil || !slices.Contains(version.SupportedVersions, "1.1.0") {
		t.Fatalf("VERSION printed %q (%v), want supportedVersions including 1.1.0", out, err)
	}
}
