package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Counters are the etcd server's own counts of what clients asked of it,
// read from its /metrics endpoint, so that round trips are counted by the
// server rather than trusted from the client.
type Counters struct {
	// Txn and Range are finished gRPC calls (grpc_server_handled_total).
	Txn, Range, DeleteRange, Put float64
	// Writes are raft proposals applied (etcd_server_proposals_applied_total):
	// every request that changes or may change the keyspace, and nothing
	// else; a read-only Txn is served without raft.
	Writes float64
	// WALBytes are the bytes this member appended to its write-ahead log
	// (etcd_disk_wal_write_bytes_total): what the writes cost its disk.
	WALBytes float64
}

// Sub returns c - o.
func (c Counters) Sub(o Counters) Counters {
	return Counters{Txn: c.Txn - o.Txn, Range: c.Range - o.Range, DeleteRange: c.DeleteRange - o.DeleteRange, Put: c.Put - o.Put, Writes: c.Writes - o.Writes, WALBytes: c.WALBytes - o.WALBytes}
}

// RoundTrips is the number of KV requests.
func (c Counters) RoundTrips() float64 { return c.Txn + c.Range + c.DeleteRange + c.Put }

// Scrape reads the counters from etcd's metrics at endpoint (the client
// URL serves /metrics).
func Scrape(ctx context.Context, endpoint string) (Counters, error) {
	var c Counters
	// grpc_server_handled_total is absent until etcd has handled a KV
	// call, so only the proposals counter is required.
	var sawApplied bool
	err := eachSample(ctx, endpoint, func(name, labels string, value float64) {
		switch name {
		case "grpc_server_handled_total":
			if !strings.Contains(labels, `grpc_service="etcdserverpb.KV"`) {
				return
			}
			switch {
			case strings.Contains(labels, `grpc_method="Txn"`):
				c.Txn += value
			case strings.Contains(labels, `grpc_method="Range"`):
				c.Range += value
			case strings.Contains(labels, `grpc_method="DeleteRange"`):
				c.DeleteRange += value
			case strings.Contains(labels, `grpc_method="Put"`):
				c.Put += value
			}
		case "etcd_server_proposals_applied_total":
			sawApplied = true
			c.Writes += value
		case "etcd_disk_wal_write_bytes_total":
			c.WALBytes += value
		}
	})
	if err != nil {
		return Counters{}, err
	}
	if !sawApplied {
		return Counters{}, fmt.Errorf("etcd metrics lack etcd_server_proposals_applied_total")
	}
	return c, nil
}

// eachSample fetches etcd's /metrics at endpoint and hands every sample
// to fn, within 10 s.
func eachSample(ctx context.Context, endpoint string, fn func(name, labels string, value float64)) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scraping etcd metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scraping etcd metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if name, labels, value, ok := parseSample(sc.Text()); ok {
			fn(name, labels, value)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading etcd metrics: %w", err)
	}
	return nil
}

// parseSample splits a Prometheus text line "name{labels} value".
func parseSample(line string) (name, labels string, value float64, ok bool) {
	if line == "" || line[0] == '#' {
		return "", "", 0, false
	}
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return "", "", 0, false
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		return "", "", 0, false
	}
	head := line[:sp]
	if i := strings.IndexByte(head, '{'); i >= 0 {
		return head[:i], head[i:], v, true
	}
	return head, "", v, true
}
