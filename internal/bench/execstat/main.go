// Command execstat runs one program as a container runtime would and
// reports its wall time and peak resident memory on file descriptor 3, as
// "elapsed-nanoseconds max-rss-KiB exit-code".
//
// It exists because a child's peak RSS can't be measured from the bench
// process itself: Go starts children with vfork, so the kernel counts the
// parent's memory at exec time (the embedded etcd's, tens of MiB) into the
// child's maxrss. From this small process the floor is its own few MiB.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: execstat PROGRAM (report on fd 3)")
		os.Exit(2)
	}
	report := os.NewFile(3, "report")
	cmd := exec.Command(os.Args[1])
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintf(os.Stderr, "execstat: %v\n", err)
		os.Exit(2)
	}
	var maxRSS int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxRSS = ru.Maxrss // KiB on Linux
	}
	if _, err := fmt.Fprintf(report, "%d %d %d\n", elapsed.Nanoseconds(), maxRSS, cmd.ProcessState.ExitCode()); err != nil {
		os.Exit(2)
	}
}
