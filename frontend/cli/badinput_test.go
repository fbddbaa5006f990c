package main

import (
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Command lines and configurations an operator gets wrong, and what
// etcd-ipam says about each.

// TestValidateBoundsSticky: a "sticky" longer than etcd's longest lease
// would fail every DEL; validate reports it, naming the limit.
func TestValidateBoundsSticky(t *testing.T) {
	conf := func(sticky string) string {
		return writeConfig(t, `{"cniVersion": "1.0.0", "name": "longhold", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://127.0.0.1:2379"},
			"sticky": "`+sticky+`", "ranges": [[{"subnet": "192.0.2.0/24"}]]}}`)
	}
	r := runCLI(t, nil, "validate", "-c", conf("2500001h"))
	r.failed(t, 1, "1 problem")
	if !strings.Contains(r.stdout, `"sticky"`) || !strings.Contains(r.stdout, "2500000h") {
		t.Fatalf("validate of sticky 2500001h:\n%s", r.stdout)
	}
	runCLI(t, nil, "validate", "-c", conf("2500000h")).ok(t)
}

// TestValidateShowsCooldown: validate names a bad "cooldown" and how to
// fix it, and shows a good one, which changes what every release does.
func TestValidateShowsCooldown(t *testing.T) {
	conf := func(cooldown string) string {
		return writeConfig(t, `{"cniVersion": "1.0.0", "name": "cool", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://127.0.0.1:2379"},
			"cooldown": "`+cooldown+`", "ranges": [[{"subnet": "192.0.2.0/24"}]]}}`)
	}
	r := runCLI(t, nil, "validate", "-c", conf("500ms"))
	r.failed(t, 1, "1 problem")
	if !strings.Contains(r.stdout, `ipam "cooldown" is "500ms"; it must be at least 1s`) {
		t.Fatalf("validate of cooldown 500ms:\n%s", r.stdout)
	}
	r = runCLI(t, nil, "validate", "-c", conf("30s")).ok(t)
	if !strings.Contains(r.stdout, "cooldown 30s: a released address goes to no other pod for 30s") {
		t.Fatalf("validate of cooldown 30s:\n%s", r.stdout)
	}
	var report validateReport
	runCLI(t, nil, "validate", "-c", conf("2m"), "--json").ok(t).decode(t, &report)
	if report.Cooldown != "2m0s" || !report.Valid {
		t.Fatalf("validate --json of cooldown 2m: %+v", report)
	}
}

// TestControlCharactersAreRefused: a node name or a note that a terminal
// would obey rather than show (a newline, an escape sequence, a bidi
// override) is a usage error, and one in the configuration a problem.
func TestControlCharactersAreRefused(t *testing.T) {
	n := newTestNet(t, "ctlnet", `[[{"subnet": "198.51.100.0/24"}]]`)
	for _, tc := range []struct {
		args    []string
		mention string
	}{
		{[]string{"reserve", "-c", n.confPath, "198.51.100.9", "--note", "x\ny\x1b[2J"}, "--note"},
		{[]string{"reserve", "-c", n.confPath, "--note", "\u202eevil", "198.51.100.9"}, "U+202E"},
		{[]string{"ls", "-c", n.confPath, "--node", "a\nb"}, "--node"},
		{[]string{"plan", "-c", n.confPath, "--node", "\u202eevil"}, "U+202E"},
		{[]string{"gc", "-c", n.confPath, "--node", strings.Repeat("n", 254), "--keep", "/dev/null"}, "253"},
	} {
		r := runCLI(t, nil, tc.args...)
		r.failed(t, exitUsage, tc.mention)
	}
	var rows []allocation
	runCLI(t, nil, "ls", "-c", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 0 {
		t.Fatalf("refused commands stored %+v", rows)
	}
	bad := writeConfig(t, `{"cniVersion": "1.0.0", "name": "ctl", "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": "http://127.0.0.1:1"},
		"nodeName": "a\u001b[31mb", "ranges": [[{"subnet": "192.0.2.0/24"}]]}}`)
	r := runCLI(t, nil, "validate", "-c", bad)
	r.failed(t, 1, "1 problem")
	if !strings.Contains(r.stdout, `"nodeName"`) || strings.Contains(r.stdout, "\x1b") {
		t.Fatalf("validate of a nodeName with an escape:\n%q", r.stdout)
	}
}

// TestStoredControlCharactersAreQuoted: names stored before they were
// refused (or written by other tools) are quoted in ls's and nodes's
// tables, never sent to the terminal as they are.
func TestStoredControlCharactersAreQuoted(t *testing.T) {
	n := newTestNet(t, "quotenet", `[[{"subnet": "198.51.100.0/24"}]]`)
	const node, note = "evil\x1b[2J\u202enode", "x\ny\x1b[2J"
	s := n.session(t, "node-a")
	evil := openTestSession(t, n.conf, node)
	add(t, evil, "c1")
	if _, err := evil.AddPod(testCtx(t), "c2", "eth0", nil, &store.PodRef{Namespace: "shop", Name: "web\x1b[0m"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(testCtx(t), []netip.Addr{netip.MustParseAddr("198.51.100.9")}, nil, note); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ls"}, {"nodes"}, {"release", "--yes", "198.51.100.2"}} {
		out := runCLI(t, nil, append([]string{args[0], "-c", n.confPath}, args[1:]...)...).ok(t).stdout
		if strings.ContainsAny(out, "\x1b\u202e") || strings.Contains(out, "x\ny") {
			t.Errorf("%s prints control characters as they are:\n%q", args[0], out)
		}
		// Quoted in a table cell, escaped in a sentence.
		if !strings.Contains(out, `evil\x1b[2J\u202enode`) {
			t.Errorf("%s does not show the node escaped:\n%s", args[0], out)
		}
	}
	out := runCLI(t, nil, "ls", "-c", n.confPath).ok(t).stdout
	for _, want := range []string{strconv.Quote("shop/web\x1b[0m"), strconv.Quote("reserved: " + note)} {
		if !strings.Contains(out, want) {
			t.Errorf("ls does not show %s:\n%s", want, out)
		}
	}
	// JSON is escaped by its encoder; it keeps the names as stored.
	var rows []allocation
	runCLI(t, nil, "ls", "-c", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 2 || rows[0].Node != node || rows[1].Hold == nil || rows[1].Hold.Note != note {
		t.Fatalf("ls --json: %+v", rows)
	}
}

// TestAddressGivenTwice: the same address twice on one command line, also
// as its IPv4-mapped IPv6 form, is a usage error naming it, not etcd's
// "duplicate key given in txn request".
func TestAddressGivenTwice(t *testing.T) {
	n := newTestNet(t, "twicenet", `[[{"subnet": "198.51.100.0/24"}]]`)
	add(t, n.session(t, "node-a"), "c1")
	for _, args := range [][]string{
		{"reserve", "-c", n.confPath, "198.51.100.20", "198.51.100.20"},
		{"reserve", "-c", n.confPath, "198.51.100.40", "::ffff:198.51.100.40"},
		{"release", "-c", n.confPath, "--yes", "198.51.100.2", "::ffff:198.51.100.2"},
	} {
		r := runCLI(t, nil, args...)
		r.failed(t, exitUsage, args[len(args)-2]+" is given twice")
	}
	var rows []allocation
	runCLI(t, nil, "ls", "-c", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 1 || rows[0].ContainerID != "c1" {
		t.Fatalf("after refused commands: %+v", rows)
	}
	// The mapped form alone is the IPv4 address.
	runCLI(t, nil, "reserve", "-c", n.confPath, "::ffff:198.51.100.40").ok(t)
	runCLI(t, nil, "ls", "-c", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 2 || rows[1].Address != "198.51.100.40" {
		t.Fatalf("after reserving ::ffff:198.51.100.40: %+v", rows)
	}
}

// TestFlagsMayFollowArguments: every command reads its flags wherever they
// stand, before or after its positional arguments; "--" still ends them.
func TestFlagsMayFollowArguments(t *testing.T) {
	n := newTestNet(t, "flagsnet", `[[{"subnet": "198.51.100.0/24"}]]`)
	add(t, n.session(t, "node-a"), "c1")
	add(t, n.session(t, "node-a"), "c2")

	r := runCLI(t, nil, "release", "198.51.100.3", "-c", n.confPath, "--yes").ok(t)
	if !strings.Contains(r.stdout, "released 198.51.100.3") {
		t.Fatalf("release ADDRESS -c FILE --yes: %q", r.stdout)
	}
	var report reserveReport
	runCLI(t, nil, "reserve", "198.51.100.9", "-c", n.confPath, "--note", "printer", "--json").ok(t).decode(t, &report)
	if report.Note != "printer" || len(report.Addresses) != 1 {
		t.Fatalf("reserve ADDRESS -c FILE --note TEXT --json: %+v", report)
	}
	if r := runCLI(t, nil, "completion", "bash", "--help").ok(t); !strings.Contains(r.stdout, "etcd-ipam completion bash|zsh") {
		t.Fatalf("completion bash --help: %q", r.stdout)
	}
	runCLI(t, nil, "ls", "stray", "-c", n.confPath, "--json").failed(t, exitUsage, `ls takes no arguments, got ["stray"]`)
	runCLI(t, nil, "release", "-c", n.confPath, "--yes", "--", "--yes").failed(t, exitUsage, `"--yes" is not an IPv4 or IPv6 address`)
	runCLI(t, nil, "release", "198.51.100.2", "-c", n.confPath, "--yes", "--", "--bogus").failed(t, exitUsage, `"--bogus" is not an IPv4 or IPv6 address`)
	runCLI(t, nil, "release", "198.51.100.2", "-c", n.confPath, "--bogus").failed(t, exitUsage, "bogus")

	var rows []allocation
	runCLI(t, nil, "ls", "-c", n.confPath, "--json").ok(t).decode(t, &rows)
	if len(rows) != 2 || rows[0].ContainerID != "c1" || rows[1].Address != "198.51.100.9" {
		t.Fatalf("after the commands: %+v", rows)
	}
}

// TestEveryCommandTakesFlagsAfterArguments moves each flag of each
// command (and subcommand) behind a positional argument and checks that
// the command line the flag library reads has it back in front, with its
// value.
func TestEveryCommandTakesFlagsAfterArguments(t *testing.T) {
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			at := append(slices.Clone(path), cmd.Name)
			walk(at, cmd.Subcommands)
			for _, f := range cmd.Flags {
				flag := "--" + f.Names()[0]
				moved := []string{flag}
				if v, ok := f.(cli.DocGenerationFlag); ok && v.TakesValue() {
					moved = append(moved, "VALUE")
				}
				args := append(append(append([]string{"etcd-ipam"}, at...), "ARG"), moved...)
				want := append(append(append([]string{"etcd-ipam"}, at...), moved...), "ARG")
				if got := flagsBeforeArgs(newApp(io.Discard, io.Discard), args); !slices.Equal(got, want) {
					t.Errorf("%q read as %q, want %q", args, got, want)
				}
			}
		}
	}
	walk(nil, newApp(io.Discard, io.Discard).Commands)
}

// TestEmptyConfigurationFileIsNamed: an empty --config file is named as
// such, not answered with the plugin's "pass it on stdin".
func TestEmptyConfigurationFileIsNamed(t *testing.T) {
	empty := writeConfig(t, "")
	blank := writeConfig(t, " \n\t\n")
	dir := t.TempDir()
	writeFile(t, dir+"/10-empty.conflist", "")
	for _, args := range [][]string{
		{"validate", "-c", empty},
		{"validate", "-c", blank, "--json"},
		{"ls", "-c", empty},
		{"usage", "-c", blank},
		{"plan", "-c", empty, "--offline"},
		{"exporter", "-c", empty, "--listen", "127.0.0.1:0"},
		{"exporter", "-c", dir, "--listen", "127.0.0.1:0"},
	} {
		r := runCLI(t, nil, args...)
		file := args[2]
		if args[0] == "exporter" && file == dir {
			file = dir + "/10-empty.conflist"
		}
		if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "the network configuration in "+file+" is empty") {
			t.Errorf("%s -c %s: exit status %d, output does not say the file is empty:\n%s%s", args[0], args[2], r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "stdin") {
			t.Errorf("%s -c %s speaks of stdin:\n%s%s", args[0], args[2], r.stdout, r.stderr)
		}
	}
	r := runCLI(t, strings.NewReader(""), "ls", "-c", "-")
	r.failed(t, 1, "stdin is empty")
}

// TestReserveRefusalSaysWhatToReserve: an address reserve cannot hold (the
// gateway, an excluded one, one in no range) is refused with advice about
// reserving, not ADD's "or request none".
func TestReserveRefusalSaysWhatToReserve(t *testing.T) {
	n := newTestNet(t, "hintnet", `[[{"subnet": "198.51.100.0/24", "exclude": ["198.51.100.200"]}]]`)
	for _, addr := range []string{"198.51.100.1", "198.51.100.200", "203.0.113.7"} {
		r := runCLI(t, nil, "reserve", "-c", n.confPath, addr)
		r.failed(t, 1, "reserve an address inside a range, other than the gateway and excluded addresses")
		if strings.Contains(r.stderr, "request") {
			t.Errorf("reserve %s speaks of requests: %s", addr, r.stderr)
		}
	}
}
