// Command ifaddrs is the program of the e2e tests' container images: it
// prints the addresses of the container's eth0, one prefix a line, then a
// line "end", so that a test sees what the CNI plugins configured from
// inside the container. With -wait it then keeps running until its
// standard input closes, so that a test holds the container (and its
// address) for as long as it needs.
//
// It is built static into a FROM scratch image: no shell, no ip(8).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	wait := len(os.Args) == 2 && os.Args[1] == "-wait"
	if len(os.Args) > 1 && !wait {
		fmt.Fprintln(os.Stderr, "usage: ifaddrs [-wait]")
		os.Exit(2)
	}
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ifaddrs:", err)
		os.Exit(1)
	}
	addrs, err := eth0.Addrs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ifaddrs:", err)
		os.Exit(1)
	}
	for _, a := range addrs {
		fmt.Println(a.String())
	}
	fmt.Println("end")
	if wait {
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
}
