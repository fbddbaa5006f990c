package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// NodeNameEnv overrides the host name as the node name that allocations
// record.
const NodeNameEnv = "ETCD_IPAM_NODE_NAME"

// NodeNameFile is where the installer DaemonSet (etcd-ipam install
// --node-name) records the Kubernetes node name on each node, so that the
// plugin, a child of the container runtime and of no pod, records the
// name the pod reconciler compares with Node objects. NodeNameFileEnv
// names another file.
const (
	NodeNameFile    = "/var/lib/etcd-ipam/node-name"
	NodeNameFileEnv = "ETCD_IPAM_NODE_NAME_FILE"
)

// MaxNodeNameLength bounds a node name by a DNS subdomain's 253 bytes, the
// limit of a Kubernetes node name, which it should be (the reconciler
// matches them).
const MaxNodeNameLength = 253

// CheckNodeName refuses a node name that could not be a Kubernetes node's
// for its length, or that the CLI could not show as it is (see
// CheckPrintable). what names where it came from.
func CheckNodeName(what, name string) error {
	if len(name) > MaxNodeNameLength {
		return invalid(fmt.Sprintf("%s is %d bytes long; the limit is %d, a Kubernetes node name's (a DNS subdomain), which it should be",
			what, len(name), MaxNodeNameLength))
	}
	return CheckPrintable(what, name)
}

// Node is the node name this invocation records in its allocations: ipam
// "nodeName", else $ETCD_IPAM_NODE_NAME (read through getenv), else the
// node name file (NodeNameFile, or $ETCD_IPAM_NODE_NAME_FILE), else the
// host name. GC on a node releases only allocations with its name. Each is
// checked by CheckNodeName.
func (n *Network) Node(getenv func(string) string) (string, error) {
	name, what := n.NodeName, nodeNameKey
	if name == "" {
		name, what = getenv(NodeNameEnv), NodeNameEnv
	}
	if name == "" {
		path := getenv(NodeNameFileEnv)
		if path == "" {
			path = NodeNameFile
		}
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			name, what = strings.TrimSpace(string(data)), "the node name in "+path
		case !errors.Is(err, fs.ErrNotExist):
			return "", invalid(fmt.Sprintf("cannot read this node's name from %s: %v; fix or remove the file, or set ipam \"nodeName\" or %s", path, err, NodeNameEnv))
		}
	}
	if name == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return "", invalid(fmt.Sprintf("cannot tell this node's name (hostname: %v); set ipam \"nodeName\" or %s", err, NodeNameEnv))
		}
		name, what = host, hostNameWhat
	}
	if err := CheckNodeName(what, name); err != nil {
		var e *Error
		if what == hostNameWhat && errors.As(err, &e) {
			e.Hint = fmt.Sprintf("set ipam \"nodeName\" or %s", NodeNameEnv)
		}
		return "", err
	}
	return name, nil
}

// Where a node name comes from, as messages name it.
const (
	nodeNameKey  = `ipam "nodeName"`
	hostNameWhat = "the host name"
)
