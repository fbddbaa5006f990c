package main

import (
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Same-node bursts. Allocators on different nodes see each other through
// the round-robin position (another node moved it a moment ago) and
// spread over the pool. Allocators of one node cannot tell a burst from a
// sequence that way: the position always names their own node. So the
// ADDs of one node on one network take turns, holding an advisory lock
// (flock) for the ADD's etcd work, as host-local's ADDs of one network do
// around its files. Each then sees its predecessor's position, the node
// keeps host-local's exact order, and none loses a race to a neighbour.
//
// The lock is an optimisation, never a condition of correctness: etcd's
// compare-and-create still decides who gets an address. An ADD that
// cannot open the lock file, or that waits longer than its share of the
// deadline, goes on without it and spreads on collision as before. The
// kernel releases the lock of a process that dies.

// lockDirs are where the lock files live, the first that can be made:
// /run is a tmpfs that root owns on every Linux host, so locks never
// outlive a reboot; the temporary directory serves an unprivileged user.
// The files are never removed: one per node, network and endpoint list is
// bounded, and unlinking a file that another ADD waits on would split the
// turn in two.
func lockDirs() []string {
	return []string{"/run/etcd-ipam", filepath.Join(os.TempDir(), "etcd-ipam-"+strconv.Itoa(os.Getuid()))}
}

// lockNetwork takes node's lock for network (on the etcd cluster of
// endpoints), waiting at most wait, and returns its release, which the
// caller must call in either case. held is false when the ADD goes on
// without the lock. Processes that act as different
// nodes on one host (tests, benchmarks) take different locks.
func lockNetwork(node, network string, endpoints []string, wait time.Duration) (release func(), held bool) {
	h := fnv.New64a()
	h.Write([]byte(node + "\x00" + network + "\x00" + strings.Join(endpoints, ",")))
	name := strconv.FormatUint(h.Sum64(), 16) + ".lock"
	var f *os.File
	for _, dir := range lockDirs() {
		if os.MkdirAll(dir, 0o700) != nil {
			continue
		}
		var err error
		if f, err = os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE, 0o600); err == nil {
			break
		}
	}
	if f == nil {
		return func() {}, false
	}
	// A blocking flock queues in the kernel, which wakes the next ADD
	// when the lock is released: waiters cost no CPU, which the holder
	// needs when a burst of processes shares a few cores. The wait is
	// bounded from here; a flock that succeeds after it was abandoned
	// holds the lock only until this process closes the file or exits.
	locked := make(chan error, 1)
	go func() { locked <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-locked:
		if err != nil {
			_ = f.Close()
			return func() {}, false
		}
		return func() { _ = f.Close() }, true // closing releases the lock
	case <-timer.C:
		return func() { _ = f.Close() }, false
	}
}
