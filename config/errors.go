package config

// Kind says what is wrong with the input, so that one function
// (ipam.AsCNIError) can turn it into the CNI code a runtime acts on;
// config itself knows nothing of codes.
type Kind int

const (
	// Invalid is a configuration that parses but is wrong (CNI code 7).
	Invalid Kind = iota + 1
	// Undecodable is a configuration that is not JSON, or not of the
	// expected shape (CNI code 6).
	Undecodable
	// BadEnvironment is an environment variable the plugin cannot use,
	// such as a malformed CNI_ARGS (CNI code 4).
	BadEnvironment
)

// Error is bad input, with what to change when that is not obvious from
// the message.
type Error struct {
	Kind Kind
	Msg  string
	// Hint says how to fix it; empty when Msg already does.
	Hint string
}

// Error reads as the CNI error it becomes, "msg" or "msg; hint", so that
// the CLI and the plugin say the same thing.
func (e *Error) Error() string {
	if e.Hint == "" {
		return e.Msg
	}
	return e.Msg + "; " + e.Hint
}

// invalid is a configuration that parses but is wrong.
func invalid(msg string) *Error {
	return &Error{Kind: Invalid, Msg: msg}
}

// undecodable is a configuration that does not decode.
func undecodable(msg string) *Error {
	return &Error{Kind: Undecodable, Msg: msg}
}
