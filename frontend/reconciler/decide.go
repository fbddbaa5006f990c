package reconciler

import (
	"time"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Reason is why an attachment counts as leaked; it labels metrics, log
// lines and Events.
type Reason string

// The reasons of NOTES 26.
const (
	// PodGone: the API server has no pod of the attachment's namespace
	// and name.
	PodGone Reason = "pod-gone"
	// PodReplaced: it has one, with another UID (a StatefulSet's next
	// instance, say).
	PodReplaced Reason = "pod-replaced"
	// PodTerminal: the pod with that UID has Succeeded or Failed.
	PodTerminal Reason = "pod-terminal"
	// NodeGone: the attachment's node has no Node object.
	NodeGone Reason = "node-gone"
)

// Reasons lists every reason, in a fixed order (metrics, docs).
var Reasons = []Reason{PodGone, PodReplaced, PodTerminal, NodeGone}

// Presence is what one read of the API server said about an object.
type Presence int

const (
	// Unknown: the read failed. An API error is never a decision.
	Unknown Presence = iota
	// Absent: the API server answered that there is no such object.
	Absent
	// Present: it answered with the object.
	Present
)

// Observation is what the API server said about an attachment's pod and
// node, from the informers' cache or from live reads.
type Observation struct {
	// Pod is whether a pod of the attachment's namespace and name
	// exists; PodUID and PodTerminal describe it when Present.
	Pod         Presence
	PodUID      string
	PodTerminal bool
	// Node is whether the attachment's node has a Node object.
	Node Presence
	// Live is set when these are reads from the API server just now,
	// not from a cache that may lag.
	Live bool
}

// Verdict is what to do with one attachment.
type Verdict int

const (
	// Untouchable: no pod identity or UID (podman, plain CNI). Never
	// released by the reconciler.
	Untouchable Verdict = iota
	// Keep: its pod is alive.
	Keep
	// Undecided: a read failed; ask again at the next pass, and keep
	// whatever leak was being timed.
	Undecided
	// Wait: leaked, but not for the grace period yet.
	Wait
	// Confirm: leaked long enough, seen in the cache: read live first.
	Confirm
	// Release: leaked long enough, and a live read says so.
	Release
)

var verdictNames = [...]string{"untouchable", "keep", "undecided", "wait", "confirm", "release"}

func (v Verdict) String() string { return verdictNames[v] }

// Decision is Decide's answer.
type Decision struct {
	Verdict Verdict
	// Reason is set when the attachment is leaked (Wait, Confirm,
	// Release).
	Reason Reason
	// Since is when the leak began, to be handed back to the next
	// Decide about the same attachment; zero when there is no leak.
	Since time.Time
	// Due is when a pod leak may be released (Since plus the grace).
	Due time.Time
}

// Decide is the reconciler's one rule (NOTES 26), pure: from the
// attachment, what the API server said, when its leak was first seen
// (zero if it was not leaked before) and the time, whether to release it.
//
// A pod or UID leak must have lasted grace, and be confirmed by a live
// read; a missing Node is confirmed by one live read and then released at
// once: its pods cannot be running anywhere, and waiting would only keep
// addresses from a replacement node's pods.
func Decide(att store.Attachment, obs Observation, since, now time.Time, grace time.Duration) Decision {
	if att.Pod == nil || att.Pod.Namespace == "" || att.Pod.Name == "" || att.Pod.UID == "" {
		return Decision{Verdict: Untouchable}
	}
	reason, decided := leak(*att.Pod, obs)
	if !decided {
		return Decision{Verdict: Undecided, Since: since}
	}
	if reason == "" {
		return Decision{Verdict: Keep}
	}
	if since.IsZero() || since.After(now) {
		since = now
	}
	d := Decision{Reason: reason, Since: since, Due: since.Add(grace)}
	if reason == NodeGone {
		d.Due = since
	}
	switch {
	case now.Before(d.Due):
		d.Verdict = Wait
	case !obs.Live:
		d.Verdict = Confirm
	default:
		d.Verdict = Release
	}
	return d
}

// leak says why the pod is leaked ("" when it is not) and whether the
// observation decides it at all. A missing Node decides on its own; the
// pod's own state is consulted otherwise, and a failed read of either
// leaves the question open.
func leak(pod store.PodRef, obs Observation) (Reason, bool) {
	if obs.Node == Absent {
		return NodeGone, true
	}
	switch {
	case obs.Pod == Unknown:
		return "", false
	case obs.Pod == Absent:
		return PodGone, obs.Node != Unknown
	case obs.PodUID != pod.UID:
		return PodReplaced, obs.Node != Unknown
	case obs.PodTerminal:
		return PodTerminal, obs.Node != Unknown
	}
	return "", obs.Node != Unknown
}
