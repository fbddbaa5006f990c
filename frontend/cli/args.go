package main

import (
	"net/netip"

	"github.com/etcd-cni/etcd-ipam/core"
)

// addrArgs parses the addresses a command is given, IPv4-mapped IPv6
// addresses (::ffff:198.51.100.7) as the IPv4 addresses they are. An
// address given twice, in any form, is a usage error naming it: it would
// otherwise reach etcd as a transaction that touches one key twice.
func addrArgs(args []string) ([]netip.Addr, error) {
	addrs := make([]netip.Addr, 0, len(args))
	given := map[netip.Addr]string{}
	for _, arg := range args {
		a, err := core.ParseAddr(arg)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		if first, dup := given[a]; dup {
			if first == arg {
				return nil, usageErrorf("%s is given twice; give each address once", a)
			}
			return nil, usageErrorf("%s is given twice (as %s and %s); give each address once", a, first, arg)
		}
		given[a] = arg
		addrs = append(addrs, a)
	}
	return addrs, nil
}
