package store

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestReserveIsAllOrNothing: a reservation is one conditional write; when
// one of its addresses is taken, nothing is reserved and the error names
// the holder.
func TestReserveIsAllOrNothing(t *testing.T) {
	n, _ := openTestNetwork(t, "reserve")
	ctx := repairCtx(t)
	reserve(t, n, "holder", "192.0.2.3/24")
	id := &Identity{Namespace: "shop", Name: "db-0", IfName: "eth0"}
	hold := Hold{For: id, Kind: HoldReserved, Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	_, err := n.Reserve(ctx, []HeldAddr{
		{Addr: netip.MustParseAddr("192.0.2.2"), RangeSet: 0, Hold: hold},
		{Addr: netip.MustParseAddr("192.0.2.3"), RangeSet: 1, Hold: hold},
	})
	var taken *TakenError
	if !errors.As(err, &taken) || taken.Addr != netip.MustParseAddr("192.0.2.3") || taken.Owner.ContainerID != "holder" {
		t.Fatalf("reserving a taken address: %v, want a TakenError naming holder", err)
	}
	if a := lookup(t, n, "192.0.2.2"); a != nil {
		t.Fatalf("the refused reservation left %+v", a)
	}
	if sets, err := n.Holds(ctx); err != nil || len(sets) != 0 {
		t.Fatalf("the refused reservation left held sets %+v (%v)", sets, err)
	}
	if _, err := n.Reserve(ctx, []HeldAddr{{Addr: netip.MustParseAddr("192.0.2.2"), Hold: hold}}); err != nil {
		t.Fatal(err)
	}
	// The identity holds something now: a second reservation for it is
	// refused, not merged.
	_, err = n.Reserve(ctx, []HeldAddr{{Addr: netip.MustParseAddr("192.0.2.4"), Hold: hold}})
	if !errors.Is(err, ErrAlreadyReserved) {
		t.Fatalf("a second reservation for db-0: %v, want ErrAlreadyReserved", err)
	}
	if a := lookup(t, n, "192.0.2.4"); a != nil {
		t.Fatalf("the refused second reservation left %+v", a)
	}
}
