package main

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

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

// flagsBeforeArgs lets every command take its flags after its positional
// arguments ("release ADDRESS --yes"), as most command-line tools do: the
// flag library (urfave/cli v2, over Go's flag package) stops reading
// flags at the first argument, so this moves a command's flags, each with
// its value, in front of its arguments before the library reads them.
// "--" still ends the flags: what follows it stays an argument. The
// command line of shell completion is left as typed, since the library
// completes from its last word.
func flagsBeforeArgs(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		return args
	}
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		i++ // the app's own flags (--help) take no value
	}
	if i == len(args) {
		return args
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args // no such command, or "help": the library says so
	}
	return append(slices.Clone(args[:i+1]), commandFlagsFirst(cmd, args[i+1:])...)
}

// commandFlagsFirst puts cmd's flags in args before its arguments; a first
// argument that names a subcommand hands the rest to it.
func commandFlagsFirst(cmd *cli.Command, args []string) []string {
	var flags, positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			// The flags' end moves to the arguments' start, so that
			// none of them is read as a flag.
			rest := append(append([]string{"--"}, positional...), args[i+1:]...)
			return append(flags, rest...)
		case arg == "-" || !strings.HasPrefix(arg, "-"):
			if sub := cmd.Command(arg); sub != nil && len(positional) == 0 {
				return append(append(flags, arg), commandFlagsFirst(sub, args[i+1:])...)
			}
			positional = append(positional, arg)
		case isHelpFlag(arg):
			// The library reads "--help TOPIC" as help on a
			// subcommand; asked for anywhere, help is on cmd.
			return []string{arg}
		default:
			flags = append(flags, arg)
			if takesValue(cmd, arg) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return append(flags, positional...)
}

// isHelpFlag reports the library's help flag, which every command has.
func isHelpFlag(arg string) bool {
	return slices.Contains(cli.HelpFlag.Names(), strings.TrimLeft(arg, "-"))
}

// takesValue reports whether flag (as written: "--config", "-c") is one
// of cmd's that reads the next argument as its value. "--flag=value",
// boolean flags and flags cmd does not have take none; the library
// reports the unknown ones.
func takesValue(cmd *cli.Command, flag string) bool {
	name := strings.TrimLeft(flag, "-")
	if strings.Contains(name, "=") {
		return false
	}
	for _, f := range cmd.Flags {
		if slices.Contains(f.Names(), name) {
			v, ok := f.(cli.DocGenerationFlag)
			return ok && v.TakesValue()
		}
	}
	return false
}
