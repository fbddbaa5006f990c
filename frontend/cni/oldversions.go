package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/version"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
)

// checkOneSetPerFamily refuses a network whose ADD result the
// configuration's CNI version cannot express: results before 0.3.0 have
// one ip4 and one ip6 member, so such a network may hold at most one range
// set of each family. host-local's configuration loader refuses exactly
// this, on ADD and DEL alike, before it stores anything; this plugin
// decides it from the configuration too, before it writes to etcd, so
// that a refused ADD leaves nothing behind.
func checkOneSetPerFamily(network, cniVersion string, sets []core.RangeSet) error {
	// An empty cniVersion is 0.1.0 to CNI, and so to this comparison.
	if ok, err := version.GreaterThanOrEqualTo(cniVersion, "0.3.0"); ok || err != nil {
		// err: skel has already refused a version it cannot parse.
		return nil
	}
	indexes := map[int][]string{} // family -> its range sets' indexes
	for i, set := range sets {
		indexes[set.Family()] = append(indexes[set.Family()], strconv.Itoa(i))
	}
	for _, family := range []int{4, 6} {
		if idx := indexes[family]; len(idx) > 1 {
			what := "cniVersion " + cniVersion
			if cniVersion == "" {
				what = "a configuration without cniVersion (CNI reads it as 0.1.0)"
			}
			return &config.Error{Kind: config.Invalid,
				Msg: fmt.Sprintf("%s cannot express this network's result: it holds at most one IPv4 and one IPv6 address, but network %q has %d IPv%d range sets (range sets %s)",
					what, network, len(idx), family, strings.Join(idx, ", ")),
				Hint: `set "cniVersion" to "0.3.0" or later, or keep one range set per address family`}
		}
	}
	return nil
}
