package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/record"

	"github.com/etcd-cni/etcd-ipam/frontend/exporter"
	"github.com/etcd-cni/etcd-ipam/frontend/reconciler"
)

// Flags of the reconciler.
const (
	flagKubeconfig     = "kubeconfig"
	flagGrace          = "grace"
	flagInterval       = "interval"
	flagDryRun         = "dry-run"
	flagOnce           = "once"
	flagMetricsListen  = "metrics-listen"
	flagLeaseNamespace = "lease-namespace"
	flagLeaseName      = "lease-name"
)

// Defaults of the reconciler (NOTES 26).
const (
	defaultGrace    = 15 * time.Minute
	defaultInterval = 10 * time.Minute
	// shortGrace is where a grace period starts to be shorter than a
	// pod's teardown (kubelet's default grace is 30s, plus the DEL).
	shortGrace = time.Minute
	// apiProbeTimeout bounds the first request to the API server, so an
	// unreachable one is an error at once, not a hang.
	apiProbeTimeout = 15 * time.Second
	// serviceAccountNamespace is where a pod finds its namespace.
	serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// reconcileCommand releases the addresses of pods that are gone, because
// in Kubernetes the plugin's own GC rarely runs (NOTES 26, 27).
func reconcileCommand() *cli.Command {
	return &cli.Command{
		Name:      "reconcile",
		Usage:     "release the addresses of Kubernetes pods that are gone (run in the cluster)",
		UsageText: "etcd-ipam reconcile --config FILE|DIR... [--kubeconfig FILE] [--grace D] [--interval D] [--dry-run] [--once] [--json] [--metrics-listen ADDR]",
		Description: "Watches pods and nodes and releases an attachment whose pod is gone, has\n" +
			"another UID or has Succeeded or Failed (after --grace, confirmed by a live\n" +
			"read), or whose node has no Node object (after one live re-read). Each\n" +
			"release is conditional on the attachment being unchanged since it was\n" +
			"listed; on a sticky network it makes holds, as GC does. Attachments without\n" +
			"a pod UID, holds and reservations are never touched. Replicas elect a\n" +
			"leader with a Lease; only it releases. --once makes one pass (waiting out\n" +
			"the grace of the leaks it found) and --dry-run releases nothing; both run\n" +
			"without election. Run --dry-run --once first.\n\n" +
			"Example:\n\n" +
			"   etcd-ipam reconcile --config /etc/cni/net.d --dry-run --once",
		Flags: append([]cli.Flag{
			&cli.StringSliceFlag{Name: flagConfig, Aliases: []string{"c"}, EnvVars: []string{"ETCD_IPAM_CONFIG"}, TakesFile: true,
				Usage: "a network configuration `PATH`: a plugin config, a .conflist or a directory of them (repeatable)"},
			&cli.StringFlag{Name: flagKubeconfig, TakesFile: true,
				Usage: "the kubeconfig `FILE` to reach the API server with (default: the pod's in-cluster credentials)"},
			&cli.StringFlag{Name: flagGrace, Value: defaultGrace.String(),
				Usage: "release a pod's addresses once it has been gone for `D`"},
			&cli.StringFlag{Name: flagInterval, Value: defaultInterval.String(),
				Usage: "make a full pass every `D` (deleted pods are watched and handled sooner)"},
			&cli.BoolFlag{Name: flagDryRun, Usage: "report what would be released; release nothing"},
			&cli.BoolFlag{Name: flagOnce, Usage: "make one pass and exit, without leader election"},
			jsonFlag(),
			&cli.StringFlag{Name: flagMetricsListen, Usage: "serve Prometheus metrics on `ADDR` (host:port)"},
			&cli.StringFlag{Name: flagLeaseNamespace, EnvVars: []string{"POD_NAMESPACE"},
				Usage: "the `NAMESPACE` of the leader-election Lease (default: the pod's own)"},
			&cli.StringFlag{Name: flagLeaseName, Value: "etcd-ipam-reconcile", Usage: "the `NAME` of the leader-election Lease"},
		}, append(etcdFlags(), coreFlag())...),
		Action: runReconcile,
	}
}

// positiveDuration parses a duration flag, refusing zero and negatives.
func positiveDuration(c *cli.Context, name string) (time.Duration, error) {
	text := c.String(name)
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, usageErrorf("--%s %q is not a duration; write it as Go does, e.g. 15m or 1h30m", name, text)
	}
	if d <= 0 {
		return 0, usageErrorf("--%s %s must be positive", name, text)
	}
	return d, nil
}

// reconcileSettings are the checked flags.
type reconcileSettings struct {
	grace, interval time.Duration
	dryRun, once    bool
	leaseNamespace  string
}

func checkReconcileFlags(c *cli.Context) (reconcileSettings, error) {
	var s reconcileSettings
	if err := noArgs(c); err != nil {
		return s, err
	}
	paths := c.StringSlice(flagConfig)
	if len(paths) == 0 {
		return s, usageErrorf("reconcile needs at least one --config PATH (a file or a directory such as /etc/cni/net.d)")
	}
	if slices.Contains(paths, "-") {
		return s, usageErrorf("reconcile reads --config from files and directories, not stdin")
	}
	if err := checkCoreFlag(c); err != nil {
		return s, err
	}
	var err error
	if s.grace, err = positiveDuration(c, flagGrace); err != nil {
		return s, err
	}
	if s.interval, err = positiveDuration(c, flagInterval); err != nil {
		return s, err
	}
	if s.grace < shortGrace {
		fmt.Fprintf(c.App.ErrWriter, "etcd-ipam reconcile: warning: --grace %s is shorter than a pod's teardown may take; a pod still shutting down could lose its addresses\n", s.grace)
	}
	if addr := c.String(flagMetricsListen); addr != "" {
		if err := checkListen(addr); err != nil {
			return s, err
		}
	}
	s.dryRun, s.once = c.Bool(flagDryRun), c.Bool(flagOnce)
	if !s.dryRun && !s.once {
		if s.leaseNamespace = c.String(flagLeaseNamespace); s.leaseNamespace == "" {
			if data, err := os.ReadFile(serviceAccountNamespace); err == nil {
				s.leaseNamespace = strings.TrimSpace(string(data))
			}
		}
		if s.leaseNamespace == "" {
			return s, usageErrorf("reconcile elects its leader with a Lease: give --lease-namespace (or run it in a pod, or with --once or --dry-run)")
		}
	}
	return s, nil
}

// kubeClient builds the client: --kubeconfig, else in-cluster credentials,
// and checks that the API server answers.
func kubeClient(ctx context.Context, c *cli.Context) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if path := c.String(flagKubeconfig); path != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("reading --kubeconfig %s: %w", path, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			return nil, usageErrorf("not running in a Kubernetes pod (no KUBERNETES_SERVICE_HOST) and no --kubeconfig; give --kubeconfig FILE")
		}
		if err != nil {
			return nil, fmt.Errorf("reading the pod's in-cluster credentials: %w", err)
		}
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building a client of the API server at %s: %w", cfg.Host, err)
	}
	probe, cancel := context.WithTimeout(ctx, apiProbeTimeout)
	defer cancel()
	if _, err := client.Discovery().RESTClient().Get().AbsPath("/version").Do(probe).Raw(); err != nil {
		return nil, fmt.Errorf("cannot reach the Kubernetes API server at %s: %w", cfg.Host, err)
	}
	return client, nil
}

func runReconcile(c *cli.Context) error {
	settings, err := checkReconcileFlags(c)
	if err != nil {
		return err
	}
	confs, err := exportedNetworks(c, c.StringSlice(flagConfig))
	if err != nil {
		return err
	}
	ctx := c.Context
	client, err := kubeClient(ctx, c)
	if err != nil {
		return err
	}
	var networks []reconciler.Network
	for _, conf := range confs {
		s, err := openSessionFor(c, conf)
		if err != nil {
			return fmt.Errorf("network %s: %w", conf.Name, err)
		}
		defer s.Close()
		networks = append(networks, reconciler.Network{Name: conf.Name, Session: s})
	}
	logf := func(msg string) { fmt.Fprintf(c.App.ErrWriter, "etcd-ipam reconcile: %s\n", msg) }
	metrics, err := reconciler.NewMetrics()
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	defer broadcaster.Shutdown()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	r, err := reconciler.New(reconciler.Options{
		Client:   client,
		Networks: networks,
		Grace:    settings.grace,
		DryRun:   settings.dryRun,
		Log:      logf,
		Metrics:  metrics,
		Events:   broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "etcd-ipam-reconcile"}),
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	if addr := c.String(flagMetricsListen); addr != "" {
		ln, err := listen(ctx, addr)
		if err != nil {
			return err
		}
		logf(fmt.Sprintf("serving metrics on http://%s/metrics", ln.Addr()))
		go func() { serveErr <- exporter.Serve(ctx, ln, metrics.Handler()) }()
	}
	if err := r.Start(ctx); err != nil {
		return err
	}
	defer r.Stop()
	if settings.once {
		r.SetActing(!settings.dryRun)
		return printReconcileReport(c.App.Writer, c.Bool(flagJSON), onePass(ctx, r, settings))
	}
	if !settings.dryRun {
		id, err := replicaIdentity()
		if err != nil {
			return err
		}
		go r.Elect(ctx, reconciler.Election{Namespace: settings.leaseNamespace, Name: c.String(flagLeaseName), Identity: id})
	}
	go r.Run(ctx, settings.interval)
	select {
	case <-ctx.Done():
		return nil
	case err := <-serveErr:
		return err
	}
}

// onePass is --once: a pass, and when it found leaks still within their
// grace (and releases), a second pass once the last of them is due, so
// that one run decides every leak it saw.
func onePass(ctx context.Context, r *reconciler.Reconciler, s reconcileSettings) reconciler.Report {
	report := r.Pass(ctx)
	if s.dryRun {
		return report
	}
	var due time.Time
	for _, l := range report.Leaks {
		if l.Outcome == reconciler.Waiting && l.Due.After(due) {
			due = l.Due
		}
	}
	if due.IsZero() {
		return report
	}
	select {
	case <-ctx.Done():
		return report
	case <-time.After(time.Until(due)):
	}
	return r.Pass(ctx)
}

// replicaIdentity names this replica in the Lease: its pod's name (the
// host name) and a random suffix, so that a restarted pod is a new holder.
func replicaIdentity() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("naming this replica for leader election: %w", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "_" + hex.EncodeToString(b), nil
}

// printReconcileReport prints a pass's report: JSON, or one line per leak.
func printReconcileReport(w io.Writer, asJSON bool, report reconciler.Report) error {
	if asJSON {
		if err := writeJSON(w, report); err != nil {
			return err
		}
		return failedNetworks(report)
	}
	for _, n := range report.Networks {
		fmt.Fprintf(w, "network %s: %d attachments, %d leaked, %d without a pod UID (never touched)\n",
			cell(n.Network), n.Attachments, n.Leaked, n.Untouchable)
	}
	for _, l := range report.Leaks {
		fmt.Fprintf(w, "  %s %s pod %s uid %s node %s container %s interface %s: %s since %s, %s\n",
			cell(l.Network), strings.Join(l.IPs, ","), cell(l.Pod), cell(l.UID), cell(l.Node), cell(l.ContainerID), cell(l.IfName),
			l.Reason, l.Since.UTC().Format(time.RFC3339), l.Outcome)
	}
	for _, n := range report.Failed {
		fmt.Fprintf(w, "network %s: its attachments could not be read\n", cell(n))
	}
	return failedNetworks(report)
}

// failedNetworks makes a pass that could not read a network a failure.
func failedNetworks(report reconciler.Report) error {
	if len(report.Failed) > 0 {
		return fmt.Errorf("the attachments of %s could not be read; nothing of them was judged", strings.Join(report.Failed, ", "))
	}
	return nil
}
