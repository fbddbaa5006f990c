package reconciler

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Election is where replicas elect the one that releases: a
// coordination.k8s.io Lease in the reconciler's namespace.
type Election struct {
	Namespace, Name string
	// Identity names this replica in the Lease; unique per replica.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's;
	// zero gives 15s, 10s and 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Elect campaigns for the Lease until ctx ends, letting the reconciler
// release only while this replica holds it. A replica that loses the
// Lease stops releasing at once and campaigns again. It hands the Lease
// over when ctx ends, so that another replica takes over without waiting
// for it to expire.
func (r *Reconciler) Elect(ctx context.Context, e Election) {
	if e.LeaseDuration == 0 {
		e.LeaseDuration, e.RenewDeadline, e.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: e.Namespace, Name: e.Name},
		Client:     r.opts.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
	}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   e.LeaseDuration,
			RenewDeadline:   e.RenewDeadline,
			RetryPeriod:     e.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            e.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					r.SetActing(true)
					r.opts.Log("leading: this replica releases (Lease " + e.Namespace + "/" + e.Name + ")")
				},
				OnStoppedLeading: func() {
					if r.acting.Swap(false) {
						r.opts.Log("no longer leading: this replica stops releasing")
					}
				},
			},
		})
	}
}
