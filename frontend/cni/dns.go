package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// parseResolvConf reads a resolv.conf into CNI's DNS settings exactly as
// host-local does: nameserver, domain, search and options lines; comments
// (# or ;) and malformed lines are skipped.
func parseResolvConf(path string) (types.DNS, error) {
	f, err := os.Open(path)
	if err != nil {
		return types.DNS{}, fmt.Errorf("reading resolvConf: %w", err)
	}
	defer f.Close()
	var dns types.DNS
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			dns.Nameservers = append(dns.Nameservers, fields[1])
		case "domain":
			dns.Domain = fields[1]
		case "search":
			dns.Search = append(dns.Search, fields[1:]...)
		case "options":
			dns.Options = append(dns.Options, fields[1:]...)
		}
	}
	if err := scanner.Err(); err != nil {
		return types.DNS{}, fmt.Errorf("reading resolvConf %s: %w", path, err)
	}
	return dns, nil
}
