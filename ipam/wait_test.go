package ipam

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestWaitStopsAtTheDeadline: the core's backoff is slept only when it
// ends before the ADD's deadline; otherwise the ADD gives up at once with
// errContention (try again later) instead of sleeping into a deadline its
// next write could not meet.
func TestWaitStopsAtTheDeadline(t *testing.T) {
	io := &addIO{s: &Session{name: "net"}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := io.wait(ctx, time.Second); !errors.Is(err, errContention) {
		t.Fatalf("a wait past the deadline: %v, want errContention", err)
	}
	if took := time.Since(start); took > 40*time.Millisecond {
		t.Errorf("giving up took %v: it slept", took)
	}
	start = time.Now()
	if err := io.wait(ctx, 5*time.Millisecond); err != nil {
		t.Fatalf("a wait within the deadline: %v", err)
	}
	if took := time.Since(start); took < 5*time.Millisecond {
		t.Errorf("waited %v, want 5ms", took)
	}
}
