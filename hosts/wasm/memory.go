package wasm

import "github.com/tetratelabs/wazero/experimental"

// The Go runtime in the guest grows its linear memory several times while
// it starts, and wazero's default memory copies the whole of it on each
// grow beyond its capacity: most of what instantiating the guest cost. So
// the host backs the memory with one reservation of its maximum size where
// the platform allows (memory_linux.go), and otherwise with growingMemory.

// growingMemory is a linear memory grown the way wazero grows its own: by
// appending zeroed bytes, copying when the capacity is exceeded.
type growingMemory struct{ buf []byte }

var _ experimental.LinearMemory = (*growingMemory)(nil)

func (m *growingMemory) Reallocate(size uint64) []byte {
	if n := uint64(len(m.buf)); size > n {
		m.buf = append(m.buf, make([]byte, size-n)...)
	}
	m.buf = m.buf[:size]
	return m.buf
}

func (m *growingMemory) Free() { m.buf = nil }
