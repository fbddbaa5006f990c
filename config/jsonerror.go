package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// CheckJSON returns an Undecodable *Error that says where data stops being
// JSON, or nil. The plugin runs it before anything else reads stdin, so
// that a typo is reported with its line and column.
func CheckJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return undecodable("the network configuration is not valid JSON: " + describeJSONError(data, err))
	}
	if _, ok := v.(map[string]any); !ok {
		return undecodable("the network configuration must be a JSON object ({...})")
	}
	return nil
}

// describeJSONError turns a decoding error into "line L, column C: reason,
// near `...`".
func describeJSONError(data []byte, err error) string {
	var offset int64 = -1
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var routeErr *routeError
	switch {
	case errors.As(err, &routeErr):
		// The first match of the route's text is the failing route: an
		// identical route earlier would have failed first, and a JSON
		// string cannot hold the text unescaped. (Only the same text as
		// an unknown member's value earlier would be found instead.)
		if i := bytes.Index(data, routeErr.text); i >= 0 {
			offset = int64(i)
		}
	case errors.As(err, &syntaxErr):
		// Offset counts the offending byte too; point at it, except at
		// the end of the input, which has no byte to point at.
		offset = syntaxErr.Offset
		if offset > 0 && syntaxErr.Error() != "unexpected end of JSON input" {
			offset--
		}
	case errors.As(err, &typeErr):
		offset = typeErr.Offset
	}
	if len(data) == 0 {
		return "it is empty; pass the network configuration on stdin"
	}
	if offset < 0 {
		return err.Error()
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:offset] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	from := max(offset-30, 0)
	to := min(offset+10, int64(len(data)))
	near := strings.ToValidUTF8(string(data[from:to]), "?")
	return fmt.Sprintf("line %d, column %d: %v, near `%s`", line, col, err, near)
}
