package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReconcileBadInput checks that each mistake in running the reconciler
// is one clear line, before anything is read from etcd or released: a
// network whose pod is gone keeps its attachment through all of them.
func TestReconcileBadInput(t *testing.T) {
	n := newTestNet(t, "recbad", `[[{"subnet": "10.9.0.0/29"}]]`)
	s := n.session(t, "node-a")
	add(t, s, "gone-pod")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	t.Setenv("POD_NAMESPACE", "")
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	noEtcd := t.TempDir()
	if err := os.WriteFile(filepath.Join(noEtcd, "10-host.conflist"), []byte(`{"cniVersion": "1.0.0", "name": "other",
		"plugins": [{"type": "bridge", "ipam": {"type": "host-local", "subnet": "10.1.0.0/24"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		what string
	}{
		{"not in a cluster, no kubeconfig", []string{"--once"}, 2, "no --kubeconfig; give --kubeconfig FILE"},
		{"unreachable API server", []string{"--once", "--kubeconfig", unreachable}, 1, "cannot reach the Kubernetes API server at https://127.0.0.1:1"},
		{"unparseable grace", []string{"--once", "--grace", "soon"}, 2, `--grace "soon" is not a duration`},
		{"zero grace", []string{"--once", "--grace", "0s"}, 2, "--grace 0s must be positive"},
		{"negative grace", []string{"--once", "--grace", "-5m"}, 2, "--grace -5m must be positive"},
		{"bad interval", []string{"--once", "--interval", "0"}, 2, "--interval 0 must be positive"},
		{"no lease namespace outside a pod", []string{"--kubeconfig", unreachable}, 2, "give --lease-namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, nil, append([]string{"reconcile", "--config", n.confPath}, tc.args...)...)
			r.failed(t, tc.code, tc.what)
			if strings.Count(r.stderr, "etcd-ipam: ") != 1 || strings.Contains(r.stderr, "panic") {
				t.Errorf("stderr %q: want one error line", r.stderr)
			}
		})
	}
	t.Run("no etcd network in the directory", func(t *testing.T) {
		runCLI(t, nil, "reconcile", "--config", noEtcd, "--once").failed(t, 1, `has no network configuration (.conf, .conflist, .json) with "ipam": {"type": "etcd"}`)
	})
	t.Run("a short grace warns and goes on", func(t *testing.T) {
		r := runCLI(t, nil, "reconcile", "--config", n.confPath, "--once", "--grace", "30s", "--kubeconfig", unreachable)
		r.failed(t, 1, "cannot reach the Kubernetes API server")
		if !strings.Contains(r.stderr, "warning: --grace 30s is shorter than a pod's teardown") {
			t.Errorf("stderr %q: want the short-grace warning", r.stderr)
		}
	})
	atts, err := s.Attachments(testCtx(t))
	if err != nil || len(atts) != 1 {
		t.Fatalf("attachments after the failed runs: %v, %v; want the one ADD's", atts, err)
	}
}

// TestREADMEReconcileAlertRuleIsValid has promtool check the README's
// alert rule for leaks that stay unreleased.
func TestREADMEReconcileAlertRuleIsValid(t *testing.T) {
	_, promtool := requirePrometheus(t)
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Reconciling pods (`etcd-ipam reconcile`)\n")
	if !ok {
		t.Fatal("README.md has no reconcile section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, rules, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal("the reconcile section has no YAML block of alert rules")
	}
	rules, _, _ = strings.Cut(rules, "```")
	path := filepath.Join(t.TempDir(), "rules.yml")
	writeFile(t, path, rules)
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS: 1 rules found") {
		t.Fatalf("promtool check rules on the README's reconcile rule: %v\n%s", err, out)
	}

	// And it fires when it should: leaks found for two hours on one
	// network and none released (the released series are zero, as the
	// reconciler makes them from its first pass), not on a network whose
	// leaks are released as they come.
	tests := filepath.Join(filepath.Dir(path), "rules_test.yml")
	writeFile(t, tests, `rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'etcd_ipam_reconcile_leaked_attachments{network="stuck",reason="pod-gone",pod="r0"}'
        values: '3x150'
      - series: 'etcd_ipam_reconcile_released_total{network="stuck",reason="pod-gone",pod="r0"}'
        values: '0x150'
      - series: 'etcd_ipam_reconcile_leaked_attachments{network="fine",reason="pod-gone",pod="r0"}'
        values: '3x150'
      - series: 'etcd_ipam_reconcile_released_total{network="fine",reason="pod-gone",pod="r0"}'
        values: '0+1x150'
    alert_rule_test:
      - eval_time: 30m
        alertname: EtcdIPAMLeaksNotReleased
        exp_alerts: []
      - eval_time: 150m
        alertname: EtcdIPAMLeaksNotReleased
        exp_alerts:
          - exp_labels: {severity: warning, network: stuck}
            exp_annotations:
              summary: "etcd-ipam: leaked attachments on stuck found, none released for an hour"
`)
	cmd := exec.Command(promtool, "test", "rules", tests)
	cmd.Dir = filepath.Dir(path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules on the README's reconcile rule: %v\n%s", err, out)
	}
}
