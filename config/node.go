package config

import (
	"fmt"
	"os"
)

// NodeNameEnv overrides the host name as the node name that allocations
// record.
const NodeNameEnv = "ETCD_IPAM_NODE_NAME"

// Node is the node name this invocation records in its allocations: ipam
// "nodeName", else $ETCD_IPAM_NODE_NAME (read through getenv), else the
// host name. GC on a node releases only allocations with its name.
func (n *Network) Node(getenv func(string) string) (string, error) {
	if n.NodeName != "" {
		return n.NodeName, nil
	}
	if name := getenv(NodeNameEnv); name != "" {
		return name, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "", invalid(fmt.Sprintf("cannot tell this node's name (hostname: %v); set ipam \"nodeName\" or %s", err, NodeNameEnv))
	}
	return host, nil
}
