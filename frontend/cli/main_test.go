package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestExitCode(t *testing.T) {
	// A child process that failed, as demo and bench wrap it.
	childErr := exec.Command(os.Args[0], "-test.run=^$", "-test.count=-1").Run()
	if childErr == nil {
		t.Fatal("the failing child process succeeded")
	}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"failure", errors.New("etcd is down"), 1},
		{"usage", usageErrorf("bad flag"), 2},
		{"wrapped usage", fmt.Errorf("demo: %w", usageErrorf("bad flag")), 2},
		{"failed child process", fmt.Errorf("building the plugin: %w", childErr), 1},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%s: exitCode(%v) = %d, want %d", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestRunExitStatus runs the app in-process on command lines that fail
// before doing any real work and checks their exit status and that the
// error is one line on stderr.
func TestRunExitStatus(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		want     int
		mentions string
	}{
		{[]string{"demo", "--bogus"}, 2, "bogus"},
		{[]string{"dev-etcd", "--bogus"}, 2, "bogus"},
		{[]string{"--bogus"}, 2, "bogus"},
		{[]string{"nosuch"}, 2, "nosuch"},
		{[]string{}, 2, "no command"},
		{[]string{"help", "nosuch"}, 2, "nosuch"},
		{[]string{"demo", "--containers", "0"}, 2, "--containers"},
		{[]string{"demo", "--containers", "many"}, 2, "many"},
		{[]string{"dev-etcd", "extra"}, 2, "extra"},
		{[]string{"demo", "--plugin", "/nonexistent/etcd"}, 1, "/nonexistent/etcd"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"etcd-ipam"}, tc.args...)
		got := run(context.Background(), args, &stdout, &stderr)
		if got != tc.want {
			t.Errorf("%q: exit status %d, want %d (stderr %q)", tc.args, got, tc.want, stderr.String())
			continue
		}
		msg := stderr.String()
		if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "etcd-ipam: ") {
			t.Errorf("%q: stderr %q, want one line starting \"etcd-ipam: \"", tc.args, msg)
		}
		if !strings.Contains(msg, tc.mentions) {
			t.Errorf("%q: stderr %q does not mention %q", tc.args, msg, tc.mentions)
		}
	}
}

func TestRunHelpSucceeds(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"demo", "--help"}, {"dev-etcd", "-h"}} {
		var stdout, stderr bytes.Buffer
		if got := run(context.Background(), append([]string{"etcd-ipam"}, args...), &stdout, &stderr); got != 0 {
			t.Errorf("%q: exit status %d, want 0 (stderr %q)", args, got, stderr.String())
		}
		if !strings.Contains(stdout.String(), "etcd-ipam") {
			t.Errorf("%q: help output %q does not name the program", args, stdout.String())
		}
	}
}

func TestFindModuleRoot(t *testing.T) {
	root, err := findModuleRoot(".")
	if err != nil {
		t.Fatalf("from the package directory: %v", err)
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if got := moduleOf(gomod); got != modulePath {
		t.Fatalf("found %s with module %q, want %q", root, got, modulePath)
	}

	if _, err := findModuleRoot(t.TempDir()); err == nil || !strings.Contains(err.Error(), "--plugin") {
		t.Fatalf("outside any module: err = %v, want one that suggests --plugin", err)
	}
}

func TestModuleOf(t *testing.T) {
	for in, want := range map[string]string{
		"module example.com/a\n\ngo 1.22\n":      "example.com/a",
		"// c\nmodule \"example.com/b\"\n":       "example.com/b",
		"go 1.22\n":                              "",
		"module github.com/etcd-cni/etcd-ipam\n": modulePath,
	} {
		if got := moduleOf([]byte(in)); got != want {
			t.Errorf("moduleOf(%q) = %q, want %q", in, got, want)
		}
	}
}
