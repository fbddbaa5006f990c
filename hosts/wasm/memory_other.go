//go:build !linux

package wasm

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator grows memories by copying, as wazero does, where no
// reservation without commitment is known to be available.
func memoryAllocator() experimental.MemoryAllocator {
	return experimental.MemoryAllocatorFunc(func(capacity, _ uint64) experimental.LinearMemory {
		return &growingMemory{buf: make([]byte, 0, capacity)}
	})
}
