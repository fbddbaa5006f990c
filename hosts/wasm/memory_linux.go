package wasm

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// memoryAllocator reserves each linear memory's maximum size (4 GiB for the
// Go guest, which declares none) as one anonymous mapping that the kernel
// commits page by page on first touch, so that growing it copies nothing.
// Where the reservation is refused (strict overcommit, a small address
// space limit) the memory grows by copying instead.
func memoryAllocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
		if max > 0 && max <= uint64(^uint(0)>>1) {
			b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE,
				syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
			if err == nil {
				return &reservedMemory{buf: b[:0]}
			}
		}
		return &growingMemory{buf: make([]byte, 0, capacity)}
	})
}

// reservedMemory is a linear memory inside one mapping of its maximum size.
type reservedMemory struct{ buf []byte }

func (m *reservedMemory) Reallocate(size uint64) []byte {
	if size > uint64(cap(m.buf)) {
		return nil // beyond the maximum: the guest's memory.grow fails
	}
	m.buf = m.buf[:size]
	return m.buf
}

// Free unmaps the memory; wazero calls it once, when the instance closes.
func (m *reservedMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf[:cap(m.buf)])
		m.buf = nil
	}
}
