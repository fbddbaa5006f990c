package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/etcd-cni/etcd-ipam/internal/redact"
)

func loadEtcd(c *etcdConf) (Etcd, error) {
	if c == nil {
		return Etcd{}, invalid(`ipam has no "etcdConfig"; add "etcdConfig": {"etcdURL": "https://127.0.0.1:2379", ...}`)
	}
	if c.CAFileFile != "" && c.CAFile != "" && c.CAFileFile != c.CAFile {
		return Etcd{}, invalid(fmt.Sprintf("etcdTrustedCAFileFile (%q) and its alias etcdTrustedCAFile (%q) differ; give one of them", c.CAFileFile, c.CAFile))
	}
	e := Etcd{
		CertFile: c.CertFile,
		KeyFile:  c.KeyFile,
		CAFile:   c.CAFileFile,
		Username: c.Username,
		Password: c.Password,
		Timeout:  DefaultTimeout,
	}
	if e.CAFile == "" {
		e.CAFile = c.CAFile
	}
	for _, ep := range strings.Split(c.URL, ",") {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			continue
		}
		if err := checkEndpoint(ep); err != nil {
			return Etcd{}, err
		}
		e.Endpoints = append(e.Endpoints, ep)
	}
	if len(e.Endpoints) == 0 {
		return Etcd{}, invalid(`etcdConfig.etcdURL is empty; give one or more comma-separated endpoints such as "https://10.0.0.1:2379,https://10.0.0.2:2379"`)
	}
	// etcd's client speaks the first endpoint's scheme to every endpoint,
	// so a mix could never work as written.
	var http, https []string
	for _, ep := range e.Endpoints {
		switch {
		case strings.HasPrefix(ep, "http://"):
			http = append(http, redact.Endpoint(ep))
		case strings.HasPrefix(ep, "https://"):
			https = append(https, redact.Endpoint(ep))
		}
	}
	if len(http) > 0 && len(https) > 0 {
		return Etcd{}, invalid(fmt.Sprintf("etcdURL mixes http:// (%s) and https:// (%s) endpoints; etcd's client uses one scheme for all of them, so give every endpoint the scheme the cluster serves", strings.Join(http, ", "), strings.Join(https, ", ")))
	}
	if e.Secure() {
		var missing []string
		for _, f := range []struct{ key, value string }{
			{"etcdCertFile", e.CertFile}, {"etcdKeyFile", e.KeyFile}, {"etcdTrustedCAFileFile", e.CAFile},
		} {
			if f.value == "" {
				missing = append(missing, f.key)
			}
		}
		if len(missing) > 0 {
			return Etcd{}, invalid(fmt.Sprintf("etcdURL uses https:// but %s %s not set; give the client certificate, its key and the CA that signed etcd's certificate", strings.Join(missing, ", "), plural(len(missing), "is", "are")))
		}
	}
	if (e.Username == "") != (e.Password == "") {
		return Etcd{}, invalid("etcdUsername and etcdPassword go together; give both or neither")
	}
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		if err != nil || d <= 0 {
			return Etcd{}, invalid(fmt.Sprintf("etcdConfig.etcdTimeout %q is not a positive duration; write it like \"10s\" or \"1500ms\"", c.Timeout))
		}
		e.Timeout = d
	}
	return e, nil
}

// checkEndpoint accepts http://host:port, https://host:port and host:port.
func checkEndpoint(ep string) error {
	if !strings.Contains(ep, "://") {
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid(fmt.Sprintf("etcd endpoint %q is not a URL like https://10.0.0.1:2379", redact.Endpoint(ep)))
	}
	return nil
}

// plural picks the verb or noun form for n items of a message.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
