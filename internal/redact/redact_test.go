package redact

import (
	"net/url"
	"strings"
	"testing"
)

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"http://root:S3cretPW@127.0.0.1:2379", "http://root:xxxxx@127.0.0.1:2379"},
		{"https://root:p%40ss@[2001:db8::1]:2379/", "https://root:xxxxx@[2001:db8::1]:2379/"},
		{"http://root@127.0.0.1:2379", "http://root@127.0.0.1:2379"},
		{"http://:pw@127.0.0.1:2379", "http://:xxxxx@127.0.0.1:2379"},
		{"http://a:b@c@127.0.0.1:2379", "http://a:xxxxx@127.0.0.1:2379"},
		{"root:S3cretPW@127.0.0.1:2379", "root:xxxxx@127.0.0.1:2379"},
		{"http://root:S3cretPW@[::1", "http://root:xxxxx@[::1"},
		{"http://root:pa/ss#w@127.0.0.1:2379", "http://root:xxxxx@127.0.0.1:2379"},
		{"root:pa/ss@127.0.0.1:2379", "root:xxxxx@127.0.0.1:2379"},
		{"http://127.0.0.1:2379/a@b:c", "http://127.0.0.1:2379/a@b:c"},
		{"127.0.0.1:2379", "127.0.0.1:2379"},
		{"", ""},
	} {
		if got := Endpoint(tc.in); got != tc.want {
			t.Errorf("Endpoint(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzEndpoint: where net/url finds a password, Endpoint hides exactly
// it: the result parses to the same user and host, with password "xxxxx".
func FuzzEndpoint(f *testing.F) {
	for _, s := range []string{"http://u:p@h:1", "https://h:1", "u:p@h", "http://u:p@h/x@y", "http://u@h:1", "http://a:b@c@h:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ep string) {
		got := Endpoint(ep)
		u, err := url.Parse(ep)
		if err != nil || !strings.Contains(ep, "://") {
			return
		}
		if _, ok := u.User.Password(); !ok {
			return
		}
		r, err := url.Parse(got)
		if err != nil {
			t.Fatalf("Endpoint(%q) = %q, which does not parse: %v", ep, got, err)
		}
		if p, _ := r.User.Password(); p != "xxxxx" || r.User.Username() != u.User.Username() || r.Host != u.Host {
			t.Fatalf("Endpoint(%q) = %q; net/url reads user %q host %q there, want user %q password xxxxx host %q",
				ep, got, r.User.Username(), r.Host, u.User.Username(), u.Host)
		}
	})
}
