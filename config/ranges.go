package config

import (
	"encoding/json"

	"github.com/etcd-cni/etcd-ipam/core"
)

// rangeConf is the part of a network configuration that holds range sets.
type rangeConf struct {
	RuntimeConfig struct {
		IPRanges [][]core.RangeSpec `json:"ipRanges"`
	} `json:"runtimeConfig"`
	IPAM *struct {
		// The deprecated single range at the top of "ipam".
		core.RangeSpec
		Ranges [][]core.RangeSpec `json:"ranges"`
	} `json:"ipam"`
}

// ReadRangeSets returns the range sets of a network configuration, not yet
// validated, in the order Load gives them (see orderRangeSets). It decodes
// nothing else, so that a checker can still report every range problem of
// a configuration that Load rejects for another reason.
func ReadRangeSets(data []byte) ([][]core.RangeSpec, error) {
	var n rangeConf
	if err := json.Unmarshal(data, &n); err != nil {
		return nil, undecodable("cannot decode the network configuration: " + describeJSONError(data, err))
	}
	if n.IPAM == nil {
		return nil, invalid(noIPAM)
	}
	return orderRangeSets(n.RuntimeConfig.IPRanges, n.IPAM.RangeSpec, n.IPAM.Ranges), nil
}

// orderRangeSets is host-local's order of range sets, which decides the
// order of a result's addresses: runtimeConfig.ipRanges first, then the
// deprecated top-level range (when it has a subnet), then "ranges".
func orderRangeSets(ipRanges [][]core.RangeSpec, topLevel core.RangeSpec, ranges [][]core.RangeSpec) [][]core.RangeSpec {
	var sets [][]core.RangeSpec
	sets = append(sets, ipRanges...)
	if topLevel.Subnet != "" {
		sets = append(sets, []core.RangeSpec{topLevel})
	}
	return append(sets, ranges...)
}
