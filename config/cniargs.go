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

// parseCNIArgs reads an ADD's CNI_ARGS (K=V;K2=V2): the requested
// addresses and the pod the runtime names. The address key is IP as CNI's
// convention and host-local spell it, or ip as this plugin's spec does;
// its value may list several addresses separated by commas. Like
// host-local (CNI's types.LoadArgs), a key given twice counts the last
// time, an empty IP requests nothing, a pair without exactly one "=" is an
// error, and so is any other key unless IgnoreUnknown is 1 or true.
//
// The keys runtimes send for Kubernetes (K8S_POD_NAMESPACE, K8S_POD_NAME,
// K8S_POD_UID, K8S_POD_INFRA_CONTAINER_ID) are known, and whatever they
// hold is never an error (NOTES 25): containerd and CRI-O send all four,
// podman only K8S_POD_NAME (a container name), Multus forwards them. The
// pod is recorded as sent, for display; whether it is also an identity
// (both names, valid for Kubernetes) is store.IdentityOf's one rule.
//
// Only ADD reads CNI_ARGS: DEL, CHECK, GC and STATUS find what they need
// by container ID and interface name, so that no argument a runtime sends
// can keep them from releasing an address (LoadNetwork).
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
	if pod != (Pod{}) {
		out.pod = &pod
	}
	return out, nil
}
