package main

import "testing"

func TestCellAndEscaped(t *testing.T) {
	for _, tc := range []struct{ in, cell, escaped string }{
		{"node-a", "node-a", "node-a"},
		{"nœud é", "nœud é", "nœud é"},
		{"a\nb", `"a\nb"`, `a\nb`},
		{"x\x1b[2J", `"x\x1b[2J"`, `x\x1b[2J`},
		{"\u202eevil", `"\u202eevil"`, `\u202eevil`},
		{"tab\there", `"tab\there"`, `tab\there`},
		{"bad\xffutf8", `"bad\xffutf8"`, `bad\xffutf8`},
		{"replacement \uFFFD kept", "replacement \uFFFD kept", "replacement \uFFFD kept"},
	} {
		if got := cell(tc.in); got != tc.cell {
			t.Errorf("cell(%q) = %s, want %s", tc.in, got, tc.cell)
		}
		if got := escaped(tc.in); got != tc.escaped {
			t.Errorf("escaped(%q) = %s, want %s", tc.in, got, tc.escaped)
		}
	}
}
