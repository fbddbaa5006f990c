package config

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// CheckPrintable refuses text that is stored and later shown to a person
// (a node name, an operator's note) when it holds a rune a terminal would
// obey rather than show: a control character (newline, escape, which
// starts a terminal's command sequences) or a format character (category
// Cf: bidi overrides such as U+202E, which reorder what follows, and
// zero-width characters, which hide). Invalid UTF-8 is refused too: the
// records are JSON, which would not keep it. what names the text in the
// message, as its user wrote it (`ipam "nodeName"`, "--note").
func CheckPrintable(what, text string) error {
	if !utf8.ValidString(text) {
		return invalid(fmt.Sprintf("%s %q is not valid UTF-8", what, text))
	}
	for _, r := range text {
		kind := ""
		switch {
		case unicode.IsControl(r):
			kind = "a control character"
		case unicode.Is(unicode.Cf, r):
			kind = "a format character (such as a bidi override or a zero-width space)"
		default:
			continue
		}
		return invalid(fmt.Sprintf("%s %q holds %U, %s, which a terminal would act on rather than show; use printable characters only", what, text, r, kind))
	}
	return nil
}
