package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// What the CLI prints of what etcd stores (node names, pods, notes) may
// hold runes a terminal obeys rather than shows: a newline that forges a
// row, an escape sequence, a bidi override. The plugin and the CLI refuse
// them now, but older records, or other tools, may have them. JSON output
// is escaped by its encoder; text output goes through these.

// printable reports whether s can be printed as it is.
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) < 0
}

// cell is s for a table cell: itself when printable, else quoted as Go
// quotes it ("evil\x1b[2J"), so that the oddity shows.
func cell(s string) string {
	if printable(s) {
		return s
	}
	return strconv.Quote(s)
}

// escaped is a sentence with each rune that cannot be printed as it is
// written as Go escapes it in a quoted string (\n, \x1b, \u202e), the rest
// left alone.
func escaped(s string) string {
	if printable(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}
