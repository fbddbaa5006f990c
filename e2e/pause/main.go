// Command pause is the sandbox ("pause") container of the e2e tests' pods:
// the process that holds a pod's namespaces while its containers come and
// go. No registry is reachable from the tests, so Kubernetes' pause image
// cannot be pulled; this is the same contract in Go, built static and
// packed into an image by the tests. It sleeps until SIGTERM or SIGINT and
// exits 0, and as PID 1 of the pod it reaps every child that is orphaned
// to it, so that exited processes do not linger as zombies.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: pause (no arguments; it sleeps until SIGTERM or SIGINT)")
		os.Exit(2)
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every child that has exited. Signals coalesce, so one
// SIGCHLD may stand for several children.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
