package config

import "time"

// MaxLeaseDuration is the longest an etcd lease can last: etcd refuses a
// TTL above MaxLeaseTTL (9,000,000,000 s, in go.etcd.io/etcd/server's lease
// package, which the plugin does not link; a test compares the two). Any
// duration the plugin turns into a lease is bounded by it, so that a long
// one is a configuration error rather than a DEL that fails every time.
const MaxLeaseDuration = 9_000_000_000 * time.Second
