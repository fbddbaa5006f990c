package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// syncBuffer is a bytes.Buffer that a running command can write to while
// the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// devEtcdRun is one dev-etcd running in the background of a test.
type devEtcdRun struct {
	cancel   context.CancelFunc
	done     chan int
	stdout   *syncBuffer
	stderr   *syncBuffer
	endpoint string
	config   string
	dataDir  string
}

// startDevEtcd runs "etcd-ipam dev-etcd extraArgs..." in a goroutine and
// waits until it has printed its endpoint.
func startDevEtcd(t *testing.T, extraArgs ...string) *devEtcdRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &devEtcdRun{cancel: cancel, done: make(chan int, 1), stdout: new(syncBuffer), stderr: new(syncBuffer)}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("dev-etcd did not stop within 30 s of cancellation")
		}
	})
	args := append([]string{"etcd-ipam", "dev-etcd"}, extraArgs...)
	go func() { r.done <- run(ctx, args, r.stdout, r.stderr) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		out := r.stdout.String()
		if strings.Contains(out, "is running") {
			for _, line := range strings.Split(out, "\n") {
				if v, ok := strings.CutPrefix(line, "endpoint:"); ok {
					r.endpoint = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(line, "etcdConfig:"); ok {
					r.config = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(line, "data dir:"); ok {
					r.dataDir, _, _ = strings.Cut(strings.TrimSpace(v), " (")
				}
			}
			return r
		}
		select {
		case code := <-r.done:
			r.done <- code // for the cleanup
			t.Fatalf("dev-etcd exited with status %d before it was ready; stdout %q, stderr %q", code, out, r.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev-etcd printed no endpoint within 30 s; stdout so far %q", out)
		}
	}
}

// stop cancels dev-etcd's context and checks that it exits cleanly.
func (r *devEtcdRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		if code != 0 {
			t.Fatalf("dev-etcd exited with status %d after cancellation; stderr %q", code, r.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev-etcd did not stop within 30 s of cancellation")
	}
	if s := r.stderr.String(); s != "" {
		t.Errorf("dev-etcd wrote to stderr: %q", s)
	}
}

// putGet writes and reads back a key through endpoint.
func putGet(t *testing.T, endpoint string) {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("connecting to %s: %v", endpoint, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, "/dev-etcd-test", "hello"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := c.Get(ctx, "/dev-etcd-test")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "hello" {
		t.Fatalf("get returned %v, want the value just put", resp.Kvs)
	}
}

func TestDevEtcdServesUntilCancelled(t *testing.T) {
	r := startDevEtcd(t)
	if !strings.HasPrefix(r.endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %q is not on http://127.0.0.1", r.endpoint)
	}
	var conf struct {
		EtcdURL string `json:"etcdURL"`
	}
	if err := json.Unmarshal([]byte(r.config), &conf); err != nil || conf.EtcdURL != r.endpoint {
		t.Fatalf("etcdConfig %q does not decode to the endpoint %s (error %v)", r.config, r.endpoint, err)
	}
	if _, err := os.Stat(r.dataDir); err != nil {
		t.Fatalf("printed data dir: %v", err)
	}

	putGet(t, r.endpoint)
	r.stop(t)

	if _, err := os.Stat(r.dataDir); !os.IsNotExist(err) {
		t.Errorf("temporary data dir %s still there after exit (stat error %v)", r.dataDir, err)
	}
}

func TestDevEtcdKeepsGivenDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	r := startDevEtcd(t, "--data-dir", dir)
	if r.dataDir != dir {
		t.Fatalf("printed data dir %q, want %q", r.dataDir, dir)
	}
	putGet(t, r.endpoint)
	r.stop(t)
	if entries, err := os.ReadDir(dir); err != nil || len(entries) == 0 {
		t.Fatalf("--data-dir %s empty or gone after exit (%d entries, error %v)", dir, len(entries), err)
	}
}
