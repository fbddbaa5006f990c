package core

// prefixedError is what fmt.Errorf(prefix+"%w", err) returns, built here
// because core does not import fmt: the WebAssembly guest would link fmt and
// reflect with it, which makes the module larger and slower to start.
type prefixedError struct {
	prefix string
	err    error
}

func (e *prefixedError) Error() string { return e.prefix + e.err.Error() }

// Unwrap lets errors.Is and errors.As see the error the prefix names.
func (e *prefixedError) Unwrap() error { return e.err }
