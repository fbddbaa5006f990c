// Command etcd-ipam is the command-line companion of the etcd CNI IPAM
// plugin: it plans allocations without making them (plan), checks
// configurations (validate), inspects a network (ls, usage), repairs it
// (release, gc), serves its metrics to Prometheus (exporter), prints
// shell completion (completion), runs a throwaway etcd for development
// (dev-etcd), shows the plugin at work end to end (demo), measures it
// against host-local (bench) and installs it on a host (install). Every network command reads the configuration a runtime passes
// the plugin, through the plugin's loader, and works on etcd through
// package ipam, as the plugin does.
//
// Each command lives in its own file as a constructor returning a
// *cli.Command, listed once in newApp, so adding one touches nothing else.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/etcd-cni/etcd-ipam/ipam"
	"github.com/urfave/cli/v2"
)

// Exit statuses, as scripts calling etcd-ipam rely on them.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	// A signal cancels the context instead of killing the process, so that
	// commands such as dev-etcd can stop etcd and remove their files.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the app with args (args[0] is the program name), prints a failure
// as one line on stderr and returns the exit status. It is main without
// os.Exit, so that tests can check exit statuses in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWithInput(ctx, args, os.Stdin, stdout, stderr)
}

// runWithInput is run reading stdin (a configuration given as "-", a keep
// list, a confirmation) from stdin.
func runWithInput(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	app.Reader = stdin
	err := app.RunContext(ctx, flagsBeforeArgs(app, args))
	if err != nil {
		// One line, whatever the error carries, so that it reads as the
		// last word of the command; details were printed before it.
		// Escaped: it may quote what etcd stores (a holder's node name).
		msg := escaped(strings.Join(strings.Fields(ipam.Explain(err).Error()), " "))
		fmt.Fprintf(stderr, "etcd-ipam: %s\n", msg)
	}
	return exitCode(err)
}

// newApp builds the etcd-ipam application writing to stdout and stderr, so
// that tests can run it against buffers.
func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:        "etcd-ipam",
		Usage:       "try out and look after the etcd CNI IPAM plugin",
		HideVersion: true,
		// Completes commands and flags; see the completion command.
		EnableBashCompletion: true,
		Writer:               stdout,
		ErrWriter:            stderr,
		Commands: []*cli.Command{
			planCommand(),
			validateCommand(),
			lsCommand(),
			usageCommand(),
			releaseCommand(),
			gcCommand(),
			reserveCommand(),
			nodesCommand(),
			reclaimCommand(),
			completionCommand(),
			devEtcdCommand(),
			demoCommand(),
			benchCommand(),
			installCommand(),
			exporterCommand(),
			reconcileCommand(),
		},
		OnUsageError: onUsageError,
		// The library would otherwise call os.Exit itself for some
		// errors; exit statuses are decided in one place, exitCode.
		ExitErrHandler: func(*cli.Context, error) {},
		// Reached only when no command matched the first argument.
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageErrorf("unknown command %q; run \"etcd-ipam help\" for the list", c.Args().First())
			}
			_ = cli.ShowAppHelp(c)
			return usageErrorf("no command given")
		},
	}
	for _, cmd := range app.Commands {
		if cmd.OnUsageError == nil {
			cmd.OnUsageError = onUsageError
		}
	}
	return app
}

// usageError marks a mistake in the command line, which exits with status 2
// rather than 1 so that callers can tell "you called me wrong" from "it
// failed".
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usageErrorf formats a usageError.
func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// onUsageError turns the library's flag-parsing errors into usage errors,
// replacing its default of printing the whole help text to stdout.
func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	name := c.App.Name
	if isSubcommand {
		name += " " + c.Command.Name
	}
	return usageError{fmt.Errorf("%w; run \"%s --help\" for usage", err, name)}
}

// noArgs rejects positional arguments for commands that take none, rather
// than silently ignoring what may be a mistyped flag.
func noArgs(c *cli.Context) error {
	if c.Args().Present() {
		return usageErrorf("%s takes no arguments, got %q", c.Command.Name, c.Args().Slice())
	}
	return nil
}

// exitCode maps an error returned by the app to the process exit status.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	// The library's only ExitCoder is "No help topic for ...", from
	// "etcd-ipam help <unknown>": a usage error too. A failed child
	// process (*exec.ExitError, wrapped by demo and bench) also has an
	// ExitCode method, but it is a failure, not a usage error.
	var ec cli.ExitCoder
	var childErr *exec.ExitError
	if errors.As(err, &ec) && !errors.As(err, &childErr) {
		return exitUsage
	}
	return exitFail
}
