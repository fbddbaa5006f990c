package wasm

import "testing"

// TestMemoryAllocator checks what wazero relies on: Reallocate keeps the
// contents, exposes zeroed bytes, and refuses to pass the maximum.
func TestMemoryAllocator(t *testing.T) {
	const page = 65536
	for name, mem := range map[string]interface {
		Reallocate(uint64) []byte
		Free()
	}{
		"allocator": memoryAllocator().Allocate(page, 4*page),
		"growing":   &growingMemory{},
	} {
		b := mem.Reallocate(page)
		if len(b) != page {
			t.Fatalf("%s: Reallocate(page) has length %d", name, len(b))
		}
		b[page-1] = 7
		b = mem.Reallocate(3 * page)
		if len(b) != 3*page || b[page-1] != 7 || b[page] != 0 || b[3*page-1] != 0 {
			t.Fatalf("%s: growing lost the contents or is not zeroed", name)
		}
		if _, ok := mem.(*reservedMemory); ok && mem.Reallocate(5*page) != nil {
			t.Errorf("%s: grew beyond its maximum", name)
		}
		mem.Free()
	}
}
