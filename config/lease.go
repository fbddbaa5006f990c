package config

import (
	"fmt"
	"time"
)

// MaxLeaseDuration is the longest an etcd lease can last: etcd refuses a
// TTL above MaxLeaseTTL (9,000,000,000 s, in go.etcd.io/etcd/server's lease
// package, which the plugin does not link; a test compares the two). Any
// duration the plugin turns into a lease is bounded by it, so that a long
// one is a configuration error rather than a DEL that fails every time.
const MaxLeaseDuration = 9_000_000_000 * time.Second

// loadLeaseDuration reads an ipam duration that becomes an etcd lease's
// TTL: at least 1s, at most MaxLeaseDuration. Empty means unset (0).
// unset says, for the message, what leaving the key out does.
func loadLeaseDuration(key, text, unset string) (time.Duration, error) {
	if text == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, invalid(fmt.Sprintf(`ipam %q is %q, not a duration; write it as Go does, e.g. "24h" or "90m"`, key, text))
	}
	if d < time.Second {
		return 0, invalid(fmt.Sprintf(`ipam %q is %q; it must be at least 1s (leave %q out for %s)`, key, text, key, unset))
	}
	if d > MaxLeaseDuration {
		return 0, invalid(fmt.Sprintf(`ipam %q is %q; it must be at most %dh (%d s), the longest lease etcd grants`,
			key, text, int64(MaxLeaseDuration/time.Hour), int64(MaxLeaseDuration/time.Second)))
	}
	return d, nil
}
