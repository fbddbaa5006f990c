package ipam

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/internal/devetcd"
	"github.com/etcd-cni/etcd-ipam/internal/etcdtest"
)

// TestFullDatabase fills an etcd with a tiny space quota until it raises
// its NOSPACE alarm, and checks what the README promises: the ADD that hits
// the quota fails with code 5 and the operator's remedy, leaves nothing
// half-written, DEL still works while the alarm is raised, ADD keeps failing
// until an operator compacts, defragments and disarms the alarm, and then
// works again.
func TestFullDatabase(t *testing.T) {
	const quota = 1 << 20
	srv := etcdtest.StartWith(t, devetcd.Options{QuotaBackendBytes: quota})
	conf := testNetwork(srv, "quota",
		[]core.RangeSpec{{Subnet: "10.20.0.0/16"}}, []core.RangeSpec{{Subnet: "2001:db8:20::/64"}})
	s := openSession(t, conf, "node-a")
	c := ctx(t)

	added := 0
	var failure error
	for added < 20000 && failure == nil {
		if _, err := s.Add(c, fmt.Sprintf("c-%d", added), "eth0", nil); err != nil {
			failure = err
			break
		}
		added++
	}
	if failure == nil {
		t.Fatalf("%d ADDs fitted into a %d-byte quota", added, quota)
	}
	e := AsCNIError(failure)
	if e.Code != types.ErrIOFailure || !strings.Contains(e.Msg, "database space exceeded") || !strings.Contains(e.Details, "alarm disarm") {
		t.Fatalf("ADD into a full database: code %d, %q, %q; want 5 naming the quota and the remedy", e.Code, e.Msg, e.Details)
	}
	t.Logf("ADD %d hit the quota: %s", added+1, e.Msg)

	// All or nothing: the failed ADD left no attachment and no address.
	checkConsistent(t, s, added)
	if atts, err := s.ContainerAttachments(c, fmt.Sprintf("c-%d", added), "eth0"); err != nil || len(atts) != 0 {
		t.Fatalf("the failed ADD left %v (%v)", atts, err)
	}

	// Deletes are allowed under the alarm: free half of the pool.
	for i := 0; i < added/2; i++ {
		if err := s.Del(c, fmt.Sprintf("c-%d", i), "eth0"); err != nil {
			t.Fatalf("DEL %d under the NOSPACE alarm: %v", i, err)
		}
	}
	checkConsistent(t, s, added-added/2)
	if _, err := s.Add(c, "after-del", "eth0", nil); AsCNIError(err).Code != types.ErrIOFailure {
		t.Fatalf("ADD with the alarm still raised: %v, want code 5", err)
	}

	// The operator's remedy, as the hint gives it.
	cli := srv.Client(t)
	recoverFromNoSpace(t, cli, srv.Endpoint())
	if _, err := s.Add(c, "after-disarm", "eth0", nil); err != nil {
		t.Fatalf("ADD after compaction, defragmentation and disarming: %v", err)
	}
	checkConsistent(t, s, added-added/2+1)
}

// checkConsistent checks that the network holds n attachments of two
// addresses each, and no address without its attachment.
func checkConsistent(t *testing.T, s *Session, n int) {
	t.Helper()
	allocs, err := s.Allocations(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	atts, err := s.Attachments(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != n || len(allocs) != 2*n {
		t.Fatalf("%d attachments and %d addresses, want %d and %d", len(atts), len(allocs), n, 2*n)
	}
}

// recoverFromNoSpace compacts etcd's history, defragments it and disarms
// its alarms: etcdctl compact, defrag and alarm disarm.
func recoverFromNoSpace(t *testing.T, cli *clientv3.Client, endpoint string) {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := cli.Status(c, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	alarms, err := cli.AlarmList(c)
	if err != nil || len(alarms.Alarms) != 1 || alarms.Alarms[0].Alarm != etcdserverpb.AlarmType_NOSPACE {
		t.Fatalf("alarms %v (%v), want NOSPACE", alarms, err)
	}
	if _, err := cli.Compact(c, st.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Defragment(c, endpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AlarmDisarm(c, &clientv3.AlarmMember{}); err != nil {
		t.Fatal(err)
	}
}

// TestFullDatabaseRacingADDs fills a small quota with ADDs from several
// goroutines at once. etcd checks its quota before proposing a request and
// again as it applies it: requests that passed the first check together
// cross the quota one after another as they apply, and etcd applies the one
// that crosses it before answering NOSPACE. Every ADD that reports failure
// must still have left nothing, and every one that succeeded must be there.
func TestFullDatabaseRacingADDs(t *testing.T) {
	const quota = 1 << 20
	const workers = 8
	srv := etcdtest.StartWith(t, devetcd.Options{QuotaBackendBytes: quota})
	conf := testNetwork(srv, "quota-race",
		[]core.RangeSpec{{Subnet: "10.21.0.0/16"}}, []core.RangeSpec{{Subnet: "2001:db8:21::/64"}})
	c := ctx(t)

	type outcome struct {
		added  int
		failed string // the container whose ADD failed
		err    error
	}
	results := make(chan outcome, workers)
	for w := 0; w < workers; w++ {
		s := openSession(t, conf, fmt.Sprintf("node-%d", w))
		go func() {
			var out outcome
			for out.added < 5000 {
				id := fmt.Sprintf("w%d-c%d", w, out.added)
				if _, err := s.Add(c, id, "eth0", nil); err != nil {
					out.failed, out.err = id, err
					break
				}
				out.added++
			}
			results <- out
		}()
	}
	total := 0
	s := openSession(t, conf, "observer")
	for w := 0; w < workers; w++ {
		out := <-results
		if out.err == nil {
			t.Fatalf("%d ADDs fitted into a %d-byte quota", out.added, quota)
		}
		if code := AsCNIError(out.err).Code; code != types.ErrIOFailure {
			t.Fatalf("ADD %s into a full database: code %d (%v), want 5", out.failed, code, out.err)
		}
		if atts, err := s.ContainerAttachments(c, out.failed, "eth0"); err != nil || len(atts) != 0 {
			t.Fatalf("the failed ADD %s left %v (%v)", out.failed, atts, err)
		}
		total += out.added
	}
	checkConsistent(t, s, total)
}
