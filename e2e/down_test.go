package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestEtcdDown takes the only etcd away twice: frozen (docker pause:
// connections are accepted, nothing answers) and stopped (nothing
// listens). Each time ADD fails with code 11 within etcdTimeout, DEL fails
// with code 11 too (the runtime must retry it), and STATUS says 50. When
// etcd returns, nothing is half-written and allocation carries on.
func TestEtcdDown(t *testing.T) {
	s := requireSuite(t)
	node := startEtcd(t, s, etcdSpec{Name: "etcd-down"})
	waitServing(t, nil, time.Minute, node.Endpoint)
	cli := newClient(t, nil, node.Endpoint)

	const network = "e2e-down"
	const timeout = 3 * time.Second
	conf := fmt.Sprintf(`{"cniVersion": "1.1.0", "name": %q, "ipam": {"type": "etcd", "etcdConfig": {"etcdURL": %q, "etcdTimeout": %q}, "ranges": [[{"subnet": "192.0.2.0/24"}]]}}`,
		network, node.Endpoint, timeout.String())
	s.mustSucceed(t, invocation{"ADD", "before-0", conf})
	s.mustSucceed(t, invocation{"ADD", "before-1", conf})
	s.mustSucceed(t, invocation{"STATUS", "", conf})

	// The plugin's deadline covers its whole work against etcd; starting
	// the process and printing fit in the 2 s the README adds to the
	// default timeout (8 s, "so within 10 s").
	const slack = 2 * time.Second
	unavailable := func(how string) {
		t.Helper()
		for _, inv := range []invocation{
			{"ADD", how + "-0", conf},
			{"DEL", "before-1", conf},
			{"STATUS", "", conf},
		} {
			code := uint(11)
			if inv.Command == "STATUS" {
				code = 50
			}
			out := s.mustFail(t, inv, code)
			took := out.End.Sub(out.Start)
			t.Logf("etcd %s: %s %s -> code %d after %v: %s", how, inv.Command, inv.ContainerID, out.Err.Code, took.Round(time.Millisecond), out.Err.Msg)
			if took > timeout+slack {
				t.Errorf("etcd %s: %s took %v, more than etcdTimeout %v", how, inv.Command, took, timeout)
			}
		}
	}

	if err := s.pool.Client.PauseContainer(node.ContainerID); err != nil {
		t.Fatalf("pausing etcd: %v", err)
	}
	unavailable("frozen")
	if err := s.pool.Client.UnpauseContainer(node.ContainerID); err != nil {
		t.Fatalf("unpausing etcd: %v", err)
	}
	waitServing(t, nil, time.Minute, node.Endpoint)
	// A request may have reached the frozen etcd and been applied once it
	// thawed; then it is whole (both keys), and the runtime's DEL after
	// the failed ADD releases it.
	got := readAllocations(t, cli, network)
	t.Logf("after the freeze etcd holds %d attachments; the failed ADD frozen-0 %s", len(got.Containers), map[bool]string{true: "was applied after all", false: "left nothing"}[got.Containers["frozen-0"] != nil])
	s.mustSucceed(t, invocation{"DEL", "frozen-0", conf})

	if err := s.pool.Client.StopContainer(node.ContainerID, 5); err != nil {
		t.Fatalf("stopping etcd: %v", err)
	}
	unavailable("stopped")
	if err := s.pool.Client.StartContainer(node.ContainerID, nil); err != nil {
		t.Fatalf("starting etcd again: %v", err)
	}
	waitServing(t, nil, time.Minute, node.Endpoint)

	got = readAllocations(t, cli, network)
	if len(got.Containers) != 2 || got.Containers["before-0"] == nil || got.Containers["before-1"] == nil || len(got.Holders) != 2 {
		t.Fatalf("after etcd came back it holds %v, want exactly before-0 and before-1", got)
	}
	after := s.mustSucceed(t, invocation{"ADD", "after-0", conf})
	if _, taken := got.Holders[after.Addrs[0]]; taken {
		t.Errorf("ADD after the outage got %s, which is taken", after.Addrs[0])
	}
	s.mustSucceed(t, invocation{"STATUS", "", conf})
	for _, id := range []string{"before-0", "before-1", "after-0"} {
		s.mustSucceed(t, invocation{"DEL", id, conf})
	}
	if got := readAllocations(t, cli, network); len(got.Holders) != 0 || len(got.Containers) != 0 {
		t.Errorf("after DEL of every container etcd holds %v", got)
	}
}
