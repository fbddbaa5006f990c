package config

import "testing"

// TestErrorText: an *Error reads as the CNI error it becomes ("msg", or
// "msg; hint"), so the CLI's messages stay those of the plugin.
func TestErrorText(t *testing.T) {
	expect(t, "without hint", (&Error{Kind: Invalid, Msg: "bad"}).Error(), "bad")
	expect(t, "with hint", (&Error{Kind: BadEnvironment, Msg: "bad", Hint: "fix it"}).Error(), "bad; fix it")
}
