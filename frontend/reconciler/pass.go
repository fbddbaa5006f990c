package reconciler

// One pass over every network: what it found (Report) and how it judges,
// confirms and releases each attachment.

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Report is what one pass found and did; its JSON is what
// `etcd-ipam reconcile --once --json` prints.
type Report struct {
	Time   time.Time `json:"time"`
	DryRun bool      `json:"dryRun"`
	Acting bool      `json:"acting"`
	// Networks counts, per network, the attachments judged.
	Networks []NetworkCount `json:"networks"`
	// Leaks lists every leaked attachment and what was done with it.
	Leaks     []Leak `json:"leaks"`
	Released  int    `json:"released"`
	APIErrors int    `json:"apiErrors"`
	// Failed lists networks whose attachments could not be read.
	Failed []string `json:"failed,omitempty"`
}

// NetworkCount is one network's tally in a Report.
type NetworkCount struct {
	Network     string `json:"network"`
	Attachments int    `json:"attachments"`
	// Untouchable have no pod identity or UID: never released.
	Untouchable int `json:"untouchable"`
	Leaked      int `json:"leaked"`
}

// Outcomes of a leak in a Report.
const (
	Waiting      = "waiting"       // its grace has not passed
	WouldRelease = "would-release" // due, confirmed live, but a dry run or not the leader
	Released     = "released"
	Changed      = "changed"   // changed since listed: a DEL or ADD won
	Recovered    = "recovered" // the live read found the pod alive
	Undetermined = "undetermined"
	Failed       = "failed" // the release failed; next pass
)

// Leak is one leaked attachment in a Report.
type Leak struct {
	Network     string    `json:"network"`
	ContainerID string    `json:"containerID"`
	IfName      string    `json:"ifName"`
	Node        string    `json:"node"`
	Pod         string    `json:"pod"`
	UID         string    `json:"uid"`
	IPs         []string  `json:"ips"`
	Reason      Reason    `json:"reason"`
	Since       time.Time `json:"since"`
	Due         time.Time `json:"due"`
	Outcome     string    `json:"outcome"`
}

// pass is the state of one pass: its report and the live reads it made,
// so that a pod on several networks is read once.
type pass struct {
	r      *Reconciler
	report Report
	live   map[string]livePod
	nodes  map[string]Presence
	seen   map[attKey]bool
	// strangers are networks whose attachments name no Kubernetes node
	// at all: the plugin's node names are not Node names, and a missing
	// Node there decides nothing.
	strangers map[string]bool
}

type livePod struct {
	presence Presence
	uid      string
	terminal bool
}

func (r *Reconciler) newPass() *pass {
	return &pass{r: r, report: Report{Time: r.opts.Now(), DryRun: r.opts.DryRun, Acting: r.acting.Load(), Leaks: []Leak{}, Networks: []NetworkCount{}},
		live: map[string]livePod{}, nodes: map[string]Presence{}, seen: map[attKey]bool{}, strangers: map[string]bool{}}
}

// Pass judges every attachment of every network once, reading each
// network's attachments once and the API server's state from the caches;
// only a leak that is due costs a live read.
func (r *Reconciler) Pass(ctx context.Context) Report {
	p := r.newPass()
	leaked := map[string]map[Reason]int{}
	for _, n := range r.opts.Networks {
		atts, err := n.Session.Attachments(ctx)
		if err != nil {
			r.opts.Log(fmt.Sprintf("network %s: reading its attachments: %v", n.Name, err))
			p.report.Failed = append(p.report.Failed, n.Name)
			continue
		}
		if r.namesNoNode(atts) {
			p.strangers[n.Name] = true
			r.opts.Log(fmt.Sprintf("network %s: no attachment names a node Kubernetes has; the plugin's node names must be the Node names (see ipam \"nodeName\", %s), so no attachment is released for a missing node", n.Name, "ETCD_IPAM_NODE_NAME"))
		}
		count := NetworkCount{Network: n.Name, Attachments: len(atts)}
		leaked[n.Name] = map[Reason]int{}
		for _, att := range atts {
			d := p.judge(ctx, n, att)
			switch {
			case d.Verdict == Untouchable:
				count.Untouchable++
			case d.Reason != "":
				count.Leaked++
				leaked[n.Name][d.Reason]++
			}
		}
		p.report.Networks = append(p.report.Networks, count)
	}
	// Forget leaks of attachments that are no longer listed.
	r.mu.Lock()
	for k := range r.since {
		if _, ok := leaked[k.network]; ok && !p.seen[k] {
			delete(r.since, k)
		}
	}
	r.mu.Unlock()
	if m := r.opts.Metrics; m != nil {
		for network, reasons := range leaked {
			for _, reason := range Reasons {
				m.leaked.WithLabelValues(network, string(reason)).Set(float64(reasons[reason]))
				// A zero series, so that "found but none released"
				// (the README's alert) holds before any release.
				m.released.WithLabelValues(network, string(reason))
			}
		}
		if len(p.report.Failed) == 0 {
			m.lastPass.Set(float64(p.report.Time.UnixNano()) / 1e9)
		}
	}
	return p.report
}

// judge decides about one attachment and, when it is due, confirms it
// live and releases it. It returns the decision as it stood after the
// cached look (a leak released is still counted as found).
func (p *pass) judge(ctx context.Context, n Network, att store.StoredAttachment) Decision {
	r := p.r
	key := attKey{n.Name, att.ContainerID, att.IfName, att.CreateRevision}
	p.seen[key] = true
	r.mu.Lock()
	since := r.since[key]
	if att.Pod != nil {
		// A watched deletion starts the leak of the attachments that
		// existed then; one made afterwards (a late ADD of the gone pod)
		// gets a grace of its own, for its runtime's DEL to arrive.
		del, ok := r.deleted[types.UID(att.Pod.UID)]
		if ok && !att.Created.After(del.at) && (since.IsZero() || del.at.Before(since)) {
			since = del.at
		}
	}
	r.mu.Unlock()
	now := r.opts.Now()
	obs := r.cached(att.Attachment)
	if p.strangers[n.Name] && obs.Node == Absent {
		obs.Node = Unknown
	}
	d := Decide(att.Attachment, obs, since, now, r.opts.Grace)
	first := d
	if d.Verdict == Confirm && (r.acting.Load() || r.opts.DryRun) {
		d = Decide(att.Attachment, p.liveRead(ctx, att.Attachment, obs), since, now, r.opts.Grace)
	}
	r.mu.Lock()
	switch {
	case d.Verdict == Keep || d.Verdict == Untouchable:
		delete(r.since, key)
	case !d.Since.IsZero():
		r.since[key] = d.Since
	}
	r.mu.Unlock()
	if first.Reason == "" {
		return first
	}
	leak := Leak{Network: n.Name, ContainerID: att.ContainerID, IfName: att.IfName, Node: att.Node,
		Pod: att.Pod.String(), UID: att.Pod.UID, IPs: addrs(att.Attachment), Reason: first.Reason, Since: first.Since, Due: first.Due}
	switch d.Verdict {
	case Wait:
		leak.Outcome = Waiting
	case Confirm:
		leak.Outcome = WouldRelease // not acting: the leader confirms
	case Keep:
		leak.Outcome = Recovered
	case Undecided:
		leak.Outcome = Undetermined
	case Release:
		leak.Reason = d.Reason
		leak.Outcome = p.release(ctx, n, att, d.Reason)
	}
	p.report.Leaks = append(p.report.Leaks, leak)
	return first
}

// release releases one attachment, if this replica acts and the pass is
// not a dry run, and says what came of it.
func (p *pass) release(ctx context.Context, n Network, att store.StoredAttachment, reason Reason) string {
	r := p.r
	if r.opts.DryRun || !r.acting.Load() {
		return WouldRelease
	}
	released, err := n.Session.ReleaseAttachments(ctx, []store.StoredAttachment{att})
	if err != nil {
		r.opts.Log(fmt.Sprintf("network %s: releasing container %s interface %s of pod %s: %v", n.Name, att.ContainerID, att.IfName, att.Pod, err))
		return Failed
	}
	if released == 0 {
		return Changed
	}
	ips := strings.Join(addrs(att.Attachment), ",")
	r.opts.Log(fmt.Sprintf("released network=%s addresses=%s pod=%s uid=%s node=%s reason=%s container=%s interface=%s",
		n.Name, ips, att.Pod, att.Pod.UID, att.Node, reason, att.ContainerID, att.IfName))
	p.report.Released++
	if m := r.opts.Metrics; m != nil {
		m.released.WithLabelValues(n.Name, string(reason)).Inc()
	}
	if r.opts.Events != nil {
		ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: att.Pod.Namespace, Name: att.Pod.Name, UID: types.UID(att.Pod.UID)}
		r.opts.Events.Eventf(ref, corev1.EventTypeNormal, EventReason, "released %s of network %s (interface %s on node %s): %s", ips, n.Name, att.IfName, att.Node, reason)
	}
	r.mu.Lock()
	delete(r.since, attKey{n.Name, att.ContainerID, att.IfName, att.CreateRevision})
	r.mu.Unlock()
	return Released
}

// namesNoNode reports whether attachments with a pod identity exist but
// none of them names a node the API server has.
func (r *Reconciler) namesNoNode(atts []store.StoredAttachment) bool {
	identified := false
	for _, att := range atts {
		if att.Pod == nil || att.Pod.UID == "" {
			continue
		}
		identified = true
		if _, ok, _ := r.nodes.GetIndexer().GetByKey(att.Node); ok {
			return false
		}
	}
	return identified
}

// cached is what the informers' caches say about the attachment's pod
// and node. A cache answers without error: it is Present or Absent.
func (r *Reconciler) cached(att store.Attachment) Observation {
	obs := Observation{Pod: Absent, Node: Absent}
	if att.Pod != nil {
		if obj, ok, _ := r.pods.GetIndexer().GetByKey(att.Pod.Namespace + "/" + att.Pod.Name); ok {
			pod := obj.(*corev1.Pod)
			obs.Pod, obs.PodUID, obs.PodTerminal = Present, string(pod.UID), terminal(pod)
		}
	}
	if _, ok, _ := r.nodes.GetIndexer().GetByKey(att.Node); ok {
		obs.Node = Present
	}
	return obs
}

// liveRead asks the API server itself, not the cache: the node when the
// cache misses it, else the pod. One GET per leak, and one per pod or
// node in a pass.
func (p *pass) liveRead(ctx context.Context, att store.Attachment, obs Observation) Observation {
	obs.Live = true
	if obs.Node == Absent {
		presence, ok := p.nodes[att.Node]
		if !ok {
			_, err := p.r.opts.Client.CoreV1().Nodes().Get(ctx, att.Node, metav1.GetOptions{})
			presence = p.presence(err, "node "+att.Node)
			p.nodes[att.Node] = presence
		}
		obs.Node = presence
		if presence != Present {
			return obs
		}
	}
	key := att.Pod.Namespace + "/" + att.Pod.Name
	lp, ok := p.live[key]
	if !ok {
		pod, err := p.r.opts.Client.CoreV1().Pods(att.Pod.Namespace).Get(ctx, att.Pod.Name, metav1.GetOptions{})
		lp.presence = p.presence(err, "pod "+key)
		if lp.presence == Present {
			lp.uid, lp.terminal = string(pod.UID), terminal(pod)
		}
		p.live[key] = lp
	}
	obs.Pod, obs.PodUID, obs.PodTerminal = lp.presence, lp.uid, lp.terminal
	return obs
}

// presence maps a GET's error: not found is an answer, anything else is
// an API error, which decides nothing.
func (p *pass) presence(err error, what string) Presence {
	switch {
	case err == nil:
		return Present
	case apierrors.IsNotFound(err):
		return Absent
	}
	p.report.APIErrors++
	if m := p.r.opts.Metrics; m != nil {
		m.apiErrors.Inc()
	}
	p.r.opts.Log(fmt.Sprintf("reading %s from the API server: %v (deciding at the next pass)", what, err))
	return Unknown
}

func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

func addrs(att store.Attachment) []string {
	out := make([]string, len(att.IPs))
	for i, ip := range att.IPs {
		out[i] = ip.Address.String()
	}
	return out
}
