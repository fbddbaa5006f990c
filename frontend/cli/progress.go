package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress is a counter on stderr for operations over many keys, such as
// a gc of thousands of attachments. It draws only when stderr is a
// terminal, so that logs and scripts capturing stderr see the one-line
// result alone.
type progress struct {
	w     io.Writer // nil when quiet
	label string
	total int
	done  int
	drawn time.Time
}

// progressEvery is how often the counter redraws at most.
const progressEvery = 100 * time.Millisecond

// newProgress returns a counter of total steps labelled label, quiet
// unless w is a terminal.
func newProgress(w io.Writer, label string, total int) *progress {
	p := &progress{label: label, total: total}
	if isTerminal(w) {
		p.w = w
	}
	return p
}

// isTerminal reports whether w is a character device such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// Add counts n more steps done.
func (p *progress) Add(n int) {
	p.done += n
	if p.w == nil || time.Since(p.drawn) < progressEvery && p.done < p.total {
		return
	}
	p.drawn = time.Now()
	fmt.Fprintf(p.w, "\r%s %d/%d", p.label, p.done, p.total)
}

// Finish clears the counter's line.
func (p *progress) Finish() {
	if p.w != nil && !p.drawn.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
