package config

import (
	"fmt"
	"strings"
)

// cniArgs is what CNI_ARGS carries for this plugin.
type cniArgs struct {
	ips []string
	pod *Pod
}

// parseCNIArgs reads CNI_ARGS (K=V;K2=V2): the requested addresses and the
// pod identity. The address key is IP as CNI's convention and host-local
// spell it, or ip as this plugin's spec does; its value may list several
// addresses separated by commas. Like host-local, the last IP key counts,
// an empty value requests nothing, and any other key is an error unless
// IgnoreUnknown is true. The keys Kubernetes runtimes pass
// (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID,
// K8S_POD_INFRA_CONTAINER_ID) are known: a pod's namespace and name come
// together or not at all.
func parseCNIArgs(args string) (cniArgs, error) {
	var ips, unknown []string
	var pod Pod
	ignoreUnknown := false
	for _, pair := range strings.Split(args, ";") {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(value, "=") {
			return cniArgs{}, fmt.Errorf("invalid pair %q", pair)
		}
		switch key {
		case "IP", "ip":
			// As with host-local, a repeated key replaces the earlier
			// one, and an empty value requests nothing.
			ips = nil
			for _, item := range strings.Split(value, ",") {
				if item = strings.TrimSpace(item); item != "" {
					ips = append(ips, item)
				}
			}
		case "K8S_POD_NAMESPACE":
			pod.Namespace = value
		case "K8S_POD_NAME":
			pod.Name = value
		case "K8S_POD_UID":
			pod.UID = value
		case "K8S_POD_INFRA_CONTAINER_ID":
			// Known, and the container ID already says it.
		case "IgnoreUnknown":
			switch strings.ToLower(value) {
			case "1", "true":
				ignoreUnknown = true
			case "0", "false":
			default:
				return cniArgs{}, fmt.Errorf("IgnoreUnknown=%q is not a boolean (use 1 or true)", value)
			}
		default:
			unknown = append(unknown, pair)
		}
	}
	if len(unknown) > 0 && !ignoreUnknown {
		return cniArgs{}, fmt.Errorf("unknown arguments %q; this plugin knows IP, the K8S_POD_* keys and IgnoreUnknown (add IgnoreUnknown=1 to pass others through)", unknown)
	}
	out := cniArgs{ips: ips}
	switch {
	case pod.Name != "" && pod.Namespace == "":
		return cniArgs{}, fmt.Errorf("K8S_POD_NAME=%s without K8S_POD_NAMESPACE; give both, or neither", pod.Name)
	case pod.Namespace != "" && pod.Name == "":
		return cniArgs{}, fmt.Errorf("K8S_POD_NAMESPACE=%s without K8S_POD_NAME; give both, or neither", pod.Namespace)
	case pod.Name != "":
		out.pod = &pod
	case pod.UID != "":
		return cniArgs{}, fmt.Errorf("K8S_POD_UID without K8S_POD_NAMESPACE and K8S_POD_NAME")
	}
	return out, nil
}
