package config

import (
	"fmt"
	"path/filepath"
)

// checkLogging fills in the default log level and rejects a level or log
// file that could only be a mistake, before anything is written.
func checkLogging(n *Network) error {
	if n.LogLevel == "" {
		n.LogLevel = "info"
	}
	switch n.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return invalid(fmt.Sprintf(`ipam "logLevel" is %q; use "debug", "info", "warn" or "error"`, n.LogLevel))
	}
	if n.LogFile != "" && !filepath.IsAbs(n.LogFile) {
		return invalid(fmt.Sprintf(`ipam "logFile" %q is not an absolute path; runtimes start plugins in varying directories, so give the full path`, n.LogFile))
	}
	return nil
}
