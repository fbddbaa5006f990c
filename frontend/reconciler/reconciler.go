// Package reconciler releases the addresses of Kubernetes pods that are
// gone, because in Kubernetes the plugin's own GC rarely runs (NOTES 26).
// It watches pods and nodes through client-go informers, judges every
// attachment with Decide, confirms a leak with a live read of the API
// server, and releases through package ipam, conditionally on the
// attachment being unchanged since it was listed. It knows nothing of
// configuration files or flags: `etcd-ipam reconcile` (frontend/cli)
// builds the sessions and the client.
package reconciler

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Session is what the reconciler needs of one network's ipam.Session.
type Session interface {
	Attachments(ctx context.Context) ([]store.StoredAttachment, error)
	NodeAttachments(ctx context.Context, node string) ([]store.StoredAttachment, error)
	// ReleaseAttachments releases as GC does (holds on a sticky
	// network), each attachment only if unchanged since it was read.
	ReleaseAttachments(ctx context.Context, atts []store.StoredAttachment) (int, error)
}

// Network is one network to reconcile.
type Network struct {
	Name    string
	Session Session
}

// Options are the reconciler's settings.
type Options struct {
	Client   kubernetes.Interface
	Networks []Network
	// Grace is how long a pod leak must last before it is released.
	Grace time.Duration
	// DryRun reports and releases nothing.
	DryRun bool
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Log receives one line per release and per failure; nil discards.
	Log func(string)
	// Metrics, when set, is updated by every pass and release.
	Metrics *Metrics
	// Events, when set, records an IPAddressReleased Event about each
	// released pod.
	Events record.EventRecorder
}

// EventReason is the reason of the Event recorded about a released pod.
const EventReason = "IPAddressReleased"

// Reconciler judges and releases attachments. Create it with New, Start
// its informers, then call Pass, or Run.
type Reconciler struct {
	opts    Options
	factory informers.SharedInformerFactory
	pods    cache.SharedIndexInformer
	nodes   cache.SharedIndexInformer
	queue   workqueue.TypedDelayingInterface[types.UID]
	// acting is whether this replica may release: it leads, or runs
	// without election.
	acting atomic.Bool

	mu sync.Mutex
	// since is when each leaked attachment was first seen leaked.
	since map[attKey]time.Time
	// deleted are pods whose deletion was watched, not yet handled.
	deleted map[types.UID]deletedPod
}

// attKey names one attachment as listed: a re-made attachment of the same
// container and interface is another one.
type attKey struct {
	network, containerID, ifName string
	created                      int64
}

type deletedPod struct {
	node string
	at   time.Time
}

// New returns a reconciler; it reads nothing until Start.
func New(opts Options) (*Reconciler, error) {
	if opts.Client == nil {
		return nil, fmt.Errorf("reconciler: no Kubernetes client")
	}
	if opts.Grace <= 0 {
		return nil, fmt.Errorf("the grace period must be positive, got %v", opts.Grace)
	}
	if len(opts.Networks) == 0 {
		return nil, fmt.Errorf("no network to reconcile")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = func(string) {}
	}
	r := &Reconciler{
		opts:    opts,
		since:   map[attKey]time.Time{},
		deleted: map[types.UID]deletedPod{},
		queue:   workqueue.NewTypedDelayingQueue[types.UID](),
	}
	// No resync: a full pass reads the caches itself.
	r.factory = informers.NewSharedInformerFactory(opts.Client, 0)
	r.pods = r.factory.Core().V1().Pods().Informer()
	r.nodes = r.factory.Core().V1().Nodes().Informer()
	// The cache keeps only what Decide reads, so that 5,000 pods cost
	// little memory.
	if err := r.pods.SetTransform(trimPod); err != nil {
		return nil, err
	}
	if _, err := r.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: r.podDeleted}); err != nil {
		return nil, err
	}
	return r, nil
}

// trimPod keeps a pod's identity, node and phase.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, DeletionTimestamp: pod.DeletionTimestamp},
		Spec:   corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}, nil
}

// SetActing says whether this replica may release (it leads, or runs
// without election). A replica that does not act still judges, so that a
// new leader knows how long each leak has lasted.
func (r *Reconciler) SetActing(on bool) { r.acting.Store(on) }

// Start starts the informers (one list and one watch of pods, and of
// nodes) and waits until both caches are filled.
func (r *Reconciler) Start(ctx context.Context) error {
	r.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), r.pods.HasSynced, r.nodes.HasSynced) {
		return fmt.Errorf("the pod and node lists did not arrive from the API server: %w", context.Cause(ctx))
	}
	return nil
}

// Stop stops the informers and the delayed work; call it once, after
// Start's context is done.
func (r *Reconciler) Stop() {
	r.queue.ShutDown()
	r.factory.Shutdown()
}

// Run makes a full pass every interval and handles watched pod deletions
// one grace period after each, until ctx ends.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) {
	go r.work(ctx)
	for {
		r.Pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// podDeleted schedules a look at a deleted pod's attachments one grace
// period after its deletion was seen.
func (r *Reconciler) podDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return // never scheduled: no ADD ran
	}
	r.mu.Lock()
	r.deleted[pod.UID] = deletedPod{node: pod.Spec.NodeName, at: r.opts.Now()}
	r.mu.Unlock()
	r.queue.AddAfter(pod.UID, r.opts.Grace)
}

// work handles the delayed look at each deleted pod.
func (r *Reconciler) work(ctx context.Context) {
	for {
		uid, shutdown := r.queue.Get()
		if shutdown {
			return
		}
		r.handleDeleted(ctx, uid)
		r.queue.Done(uid)
	}
}

// handleDeleted judges the attachments of one deleted pod, read through
// its node's index, not the whole network.
func (r *Reconciler) handleDeleted(ctx context.Context, uid types.UID) {
	r.mu.Lock()
	pod, ok := r.deleted[uid]
	r.mu.Unlock()
	if !ok {
		return
	}
	// Forgotten only once judged: judge reads the deletion's time from
	// r.deleted as the start of the leak, and keeps it in r.since for
	// the next pass should this look decide nothing.
	defer func() {
		r.mu.Lock()
		delete(r.deleted, uid)
		r.mu.Unlock()
	}()
	p := r.newPass()
	for _, n := range r.opts.Networks {
		atts, err := n.Session.NodeAttachments(ctx, pod.node)
		if err != nil {
			r.opts.Log(fmt.Sprintf("network %s: reading node %s's attachments: %v", n.Name, pod.node, err))
			continue
		}
		for _, att := range atts {
			if att.Pod != nil && att.Pod.UID == string(uid) {
				p.judge(ctx, n, att)
			}
		}
	}
}
