package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// PluginPrefix is the key prefix the documented minimal role may use: the
// plugin and the CLI must work with read and write there and nothing else.
const PluginPrefix = "/etcd-cni/networks/"

// Users are the accounts EnableAuth creates.
type Users struct {
	// Root may do anything; tests use it to inspect and damage state.
	Root, RootPassword string
	// Plugin has exactly the documented role: readwrite on PluginPrefix.
	Plugin, PluginPassword string
	// Outsider can log in but has no role at all.
	Outsider, OutsiderPassword string
	// Role is the name of Plugin's role.
	Role string
}

// EnableAuth turns on etcd's authentication with three users (see Users)
// and the documented minimal role. Afterwards clients must log in, so use
// ClientAs rather than Client.
func (s *Server) EnableAuth(t testing.TB) Users {
	t.Helper()
	u := Users{
		Root: "root", RootPassword: "root-secret-R00t",
		Plugin: "cni-node", PluginPassword: "plugin-secret-Pl4g",
		Outsider: "outsider", OutsiderPassword: "outsider-secret-0ut",
		Role: "etcd-cni",
	}
	c := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	steps := []struct {
		what string
		do   func() error
	}{
		{"adding role root", func() error { _, err := c.RoleAdd(ctx, "root"); return err }},
		{"adding user root", func() error { _, err := c.UserAdd(ctx, u.Root, u.RootPassword); return err }},
		{"granting root", func() error { _, err := c.UserGrantRole(ctx, u.Root, "root"); return err }},
		{"adding the plugin role", func() error { _, err := c.RoleAdd(ctx, u.Role); return err }},
		{"granting the prefix", func() error {
			_, err := c.RoleGrantPermission(ctx, u.Role, PluginPrefix, clientv3.GetPrefixRangeEnd(PluginPrefix),
				clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		}},
		{"adding the plugin user", func() error { _, err := c.UserAdd(ctx, u.Plugin, u.PluginPassword); return err }},
		{"granting the plugin user", func() error { _, err := c.UserGrantRole(ctx, u.Plugin, u.Role); return err }},
		{"adding the outsider", func() error { _, err := c.UserAdd(ctx, u.Outsider, u.OutsiderPassword); return err }},
		{"enabling auth", func() error { _, err := c.AuthEnable(ctx); return err }},
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatalf("etcdtest: %s: %v", step.what, err)
		}
	}
	return u
}

// ClientAs returns a client logged in as user, closed when the test ends.
func (s *Server) ClientAs(t testing.TB, user, password string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{s.Endpoint()},
		DialTimeout: clientDialTimeout,
		TLS:         s.clientTLS,
		Username:    user,
		Password:    password,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("etcdtest: logging in to %s as %s: %v", s.Endpoint(), user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
