package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/store"
)

// openLog returns the logger that ipam "logFile" and "logLevel" ask for,
// and a function that closes it. Without a logFile it discards everything:
// stdout carries the CNI result and must hold nothing else, and stderr is
// not read by every runtime.
//
// A log file that cannot be opened is reported once on stderr and the
// command goes on without a log: a broken log path must not stop
// containers from getting addresses.
func openLog(conf *config.Network, stderr io.Writer) (*slog.Logger, func()) {
	discard := slog.New(slog.DiscardHandler)
	if conf.LogFile == "" {
		return discard, func() {}
	}
	if err := os.MkdirAll(filepath.Dir(conf.LogFile), 0o700); err != nil {
		fmt.Fprintf(stderr, "etcd ipam: not logging: creating the directory of logFile %q: %v\n", conf.LogFile, err)
		return discard, func() {}
	}
	// 0600: the log names containers and endpoints, which are nobody
	// else's business on the node.
	f, err := os.OpenFile(conf.LogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "etcd ipam: not logging: opening logFile %q: %v\n", conf.LogFile, err)
		return discard, func() {}
	}
	h := slog.NewTextHandler(f, &slog.HandlerOptions{Level: logLevel(conf.LogLevel)})
	return slog.New(h).With("pid", os.Getpid()), func() { _ = f.Close() }
}

// logLevel maps the levels config.Load accepts; it defaults to info.
func logLevel(name string) slog.Level {
	switch name {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// logSettings records, at debug level, how this invocation reaches etcd.
// The password is never written, only whether one is set, nor a password
// in an endpoint's URL; the TLS files are named by path, never by content.
func logSettings(log *slog.Logger, conf *config.Network, node string) {
	log.Debug("settings",
		"endpoints", conf.Etcd.RedactedEndpoints(),
		"certFile", conf.Etcd.CertFile,
		"keyFile", conf.Etcd.KeyFile,
		"caFile", conf.Etcd.CAFile,
		"username", conf.Etcd.Username,
		"passwordSet", conf.Etcd.Password != "",
		"timeout", conf.Etcd.Timeout,
		"core", conf.Core,
		"node", node,
		"rangeSets", len(conf.RangeSets),
		"requested", len(conf.Requested))
}

// logOutcome writes one line per failed command, at error level, with
// the CNI code the runtime will see. Successes are logged by the commands,
// which know what they did.
func logOutcome(log *slog.Logger, err error, took time.Duration) {
	if err == nil {
		log.Debug("done", "took", took)
		return
	}
	var e *types.Error
	if errors.As(err, &e) {
		log.LogAttrs(context.Background(), slog.LevelError, "failed",
			slog.Uint64("code", uint64(e.Code)), slog.String("msg", e.Msg), slog.String("details", e.Details), slog.Duration("took", took))
		return
	}
	log.Error("failed", "err", err, "took", took)
}

// attachedList formats an attachment's addresses for a log line.
func attachedList(ips []store.AttachedAddr) string {
	parts := make([]string, len(ips))
	for i, ip := range ips {
		parts[i] = ip.Address.String()
	}
	return strings.Join(parts, ",")
}
