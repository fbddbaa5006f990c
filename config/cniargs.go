package config

import (
	"fmt"
	"strings"
)

// parseCNIArgs reads CNI_ARGS (K=V;K2=V2) and returns the requested
// addresses. The key is IP as CNI's convention and host-local spell it, or
// ip as this plugin's spec does; its value may list several addresses
// separated by commas. Like host-local, the last IP key counts, an empty
// value requests nothing, and any other key is an error unless
// IgnoreUnknown is true.
func parseCNIArgs(args string) ([]string, error) {
	var ips, unknown []string
	ignoreUnknown := false
	for _, pair := range strings.Split(args, ";") {
		key, value, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(value, "=") {
			return nil, fmt.Errorf("invalid pair %q", pair)
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
		case "IgnoreUnknown":
			switch strings.ToLower(value) {
			case "1", "true":
				ignoreUnknown = true
			case "0", "false":
			default:
				return nil, fmt.Errorf("IgnoreUnknown=%q is not a boolean (use 1 or true)", value)
			}
		default:
			unknown = append(unknown, pair)
		}
	}
	if len(unknown) > 0 && !ignoreUnknown {
		return nil, fmt.Errorf("unknown arguments %q; this plugin knows IP and IgnoreUnknown (add IgnoreUnknown=1 to pass others through)", unknown)
	}
	return ips, nil
}
