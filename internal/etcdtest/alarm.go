package etcdtest

import (
	"context"
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// RaiseNoSpace raises etcd's NOSPACE alarm as a full database would: from
// then on etcd refuses every put and lease grant and lets deletes and
// reads pass. Filling a space quota until etcd raises it takes seconds;
// raising it directly lets a test check what runs under it in
// milliseconds. ClearNoSpace disarms it.
func RaiseNoSpace(t testing.TB, c *clientv3.Client) {
	t.Helper()
	alarm(t, c, etcdserverpb.AlarmRequest_ACTIVATE)
}

// ClearNoSpace disarms the NOSPACE alarm (etcdctl alarm disarm).
func ClearNoSpace(t testing.TB, c *clientv3.Client) {
	t.Helper()
	alarm(t, c, etcdserverpb.AlarmRequest_DEACTIVATE)
}

func alarm(t testing.TB, c *clientv3.Client, action etcdserverpb.AlarmRequest_AlarmAction) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kvTimeout)
	defer cancel()
	members, err := c.MemberList(ctx)
	if err != nil {
		t.Fatalf("etcdtest: listing members: %v", err)
	}
	m := etcdserverpb.NewMaintenanceClient(c.ActiveConnection())
	for _, member := range members.Members {
		if _, err := m.Alarm(ctx, &etcdserverpb.AlarmRequest{Action: action, MemberID: member.ID, Alarm: etcdserverpb.AlarmType_NOSPACE}); err != nil {
			t.Fatalf("etcdtest: %s NOSPACE alarm: %v", action, err)
		}
	}
}
