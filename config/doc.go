// Package config is the plugin's one configuration loader: it turns the
// network configuration a runtime passes on stdin, plus CNI_ARGS, into a
// typed Network, and reports bad input as an *Error whose Kind says what
// is wrong (ipam.AsCNIError turns it into the CNI code a runtime sees).
//
// It reads no files and contacts nothing: Load works only on the bytes it
// is given, and Network.Node reads only the environment through the getenv
// it is passed and, as a last resort, the host name (os.Hostname). Range
// validation itself belongs to package core, so that every host applies
// the same rules.
package config
