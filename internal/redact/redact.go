// Package redact hides secrets in what messages and logs print.
package redact

import (
	"net/url"
	"strings"
)

// Endpoint is an etcd endpoint as it may be shown: a password in its
// userinfo (http://user:password@host:port) replaced by "xxxxx", as
// net/url's URL.Redacted does, the user kept so that a reader can tell
// which account was meant. It reads the userinfo as url.Parse does, and
// also where url.Parse fails (a password holding "/" or "#" unescaped) or
// there is no scheme, since such an endpoint is shown in the error that
// rejects it.
func Endpoint(ep string) string {
	scheme, rest := "", ep
	if i := strings.Index(ep, "://"); i >= 0 {
		scheme, rest = ep[:i+len("://")], ep[i+len("://"):]
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	// The userinfo ends at the authority's last "@", as url.Parse reads
	// it; in what url.Parse rejects, at the last "@" of all.
	at := strings.LastIndex(authority, "@")
	if _, err := url.Parse(ep); at < 0 && (err != nil || scheme == "") {
		at = strings.LastIndex(rest, "@")
	}
	if at < 0 {
		return ep
	}
	user, _, hasPassword := strings.Cut(rest[:at], ":")
	if !hasPassword {
		return ep
	}
	return scheme + user + ":xxxxx" + rest[at:]
}

// Endpoints is Endpoint of each.
func Endpoints(eps []string) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = Endpoint(ep)
	}
	return out
}
