package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/ipam"
)

// validateCommand checks a configuration without contacting etcd and
// reports every problem in one pass, so that an operator fixes them all
// at once instead of one per run.
func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a network configuration and report every problem at once",
		UsageText: "etcd-ipam validate --config FILE [--json]",
		Description: "Loads the configuration as the plugin does and checks every range set and\n" +
			"range (subnet, rangeStart, rangeEnd, gateway, exclude, overlaps), naming the\n" +
			"range set and range of each problem, and that the TLS files it names can be\n" +
			"read. It does not contact etcd. Exits 1 when there is any problem.\n\n" +
			"Example:\n\n" +
			"   etcd-ipam validate --config /etc/cni/net.d/10-examplenet.conflist",
		Flags:  append(append([]cli.Flag{configFlag()}, etcdFlags()...), coreFlag(), jsonFlag()),
		Action: runValidate,
	}
}

// problem is one finding of validate; its JSON is stable. RangeSet and
// Range are zero-based and absent when the problem is not about one.
type problem struct {
	RangeSet *int   `json:"rangeSet,omitempty"`
	Range    *int   `json:"range,omitempty"`
	Message  string `json:"message"`
}

// validateReport is the output of validate --json.
type validateReport struct {
	Network string `json:"network,omitempty"`
	Valid   bool   `json:"valid"`
	// Cooldown is ipam "cooldown" as a Go duration, when set: shown
	// because it changes what a release does, which nothing else in the
	// report reveals.
	Cooldown string    `json:"cooldown,omitempty"`
	Problems []problem `json:"problems"`
}

func runValidate(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if err := checkCoreFlag(c); err != nil {
		return err
	}
	name, data, err := readConfig(c)
	if err != nil {
		return err
	}
	report := validate(c, name, data)
	if c.Bool(flagJSON) {
		if err := writeJSON(c.App.Writer, report); err != nil {
			return err
		}
	} else {
		for _, p := range report.Problems {
			fmt.Fprintln(c.App.Writer, describeProblem(p))
		}
	}
	if !report.Valid {
		return fmt.Errorf("the network configuration in %s has %d %s", name, len(report.Problems), pluralize(len(report.Problems), "problem", "problems"))
	}
	if !c.Bool(flagJSON) {
		fmt.Fprintf(c.App.Writer, "network %s: the configuration in %s is valid\n", report.Network, name)
		if report.Cooldown != "" {
			fmt.Fprintf(c.App.Writer, "cooldown %s: a released address goes to no other pod for %s (sticky holds and reservations first)\n", report.Cooldown, report.Cooldown)
		}
	}
	return nil
}

// validate collects every problem of a configuration, read from name.
func validate(c *cli.Context, name string, data []byte) validateReport {
	report := validateReport{Problems: []problem{}}
	fail := func(err error) {
		// The loader's own text, without context added on the way, is
		// what the plugin would report.
		msg := err.Error()
		var confErr *config.Error
		if errors.As(err, &confErr) {
			msg = confErr.Error()
		}
		report.Problems = append(report.Problems, problem{Message: msg})
	}
	if err := checkNotEmpty(name, data); err != nil {
		fail(err)
		return report
	}
	data, err := pluginConfig(data)
	if err == nil {
		data, err = overrideEtcd(c, data)
	}
	if err != nil {
		fail(err)
		return report
	}
	var specs [][]core.RangeSpec
	var specsErr error // already reported by the loader's failure
	conf, err := config.Load(data, "")
	if err != nil {
		// The loader stops at its first problem, which is never about
		// ranges (it leaves those to the core): check them as well.
		fail(err)
		specs, specsErr = config.ReadRangeSets(data)
	} else {
		report.Network = conf.Name
		if conf.Cooldown > 0 {
			report.Cooldown = conf.Cooldown.String()
		}
		specs = conf.RangeSets
		for _, err := range ipam.CheckTLSFiles(conf.Etcd) {
			fail(err)
		}
	}
	if specsErr == nil {
		// Range rules are the core's, the same in every host.
		if conf == nil {
			conf = &config.Network{Core: hosts.Native}
		}
		host, closer, err := coreHost(c, conf)
		if err != nil {
			fail(err)
			report.Valid = false
			return report
		}
		defer closer.Close()
		for _, e := range host.ValidateRangeSets(specs) {
			p := problem{Message: e.Error()}
			if e.RangeSet >= 0 {
				p.RangeSet = &e.RangeSet
			}
			if e.Range >= 0 {
				p.Range = &e.Range
			}
			report.Problems = append(report.Problems, p)
		}
	}
	report.Valid = len(report.Problems) == 0
	return report
}

// describeProblem is one line of validate's text output; the core's
// messages already name the range set and range.
func describeProblem(p problem) string { return "problem: " + p.Message }

func pluralize(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
