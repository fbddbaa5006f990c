package main

import (
	"strings"
	"testing"
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
