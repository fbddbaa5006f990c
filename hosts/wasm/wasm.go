// Package wasm runs the allocation core as a WebAssembly module inside the
// plugin's process, hosted by wazero: the same pure functions as
// hosts/native, compiled once to a portable module that can be shipped,
// audited and sandboxed apart from the I/O around it.
//
// The module (core.wasm, built from hosts/wasm/guest by `go generate
// ./hosts/wasm`) is embedded. Its machine code is kept in wazero's
// compilation cache on disk, so only the first process on a node pays for
// compiling it; later ones load it. Facts this package is built on:
//   - the guest is a reactor (-buildmode=c-shared): it initializes only when
//     "_initialize" is named as a start function;
//   - calls into one instance must be serialized, so every call holds a lock;
//   - a trap (a panic in the guest) may leave the instance callable, but its
//     state is unknown, so it is discarded and the next call starts a fresh
//     one;
//   - the guest's clock and randomness are wazero's fake ones: the core needs
//     neither, and its answers must not depend on them.
package wasm

//go:generate go run ./internal/gen

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/etcd-cni/etcd-ipam/hosts"
	"github.com/etcd-cni/etcd-ipam/hosts/wasm/internal/abi"
)

//go:embed core.wasm
var module []byte

// CacheDirEnv names the environment variable that overrides the default
// compilation cache directory.
const CacheDirEnv = "ETCD_IPAM_WASM_CACHE_DIR"

// DefaultCacheDir is where compiled code is kept unless configured: $CacheDirEnv
// if set, /var/cache/etcd-ipam/wasm for root (CNI plugins run as root), else
// the user's cache directory. It returns "" (an in-memory cache) when no
// directory can be named.
func DefaultCacheDir(getenv func(string) string) string {
	if d := getenv(CacheDirEnv); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/etcd-ipam/wasm"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "etcd-ipam", "wasm")
	}
	return ""
}

// Options configure a Host.
type Options struct {
	// CacheDir keeps compiled code between processes. Empty, or a directory
	// that cannot be created or written, means an in-memory cache: correct,
	// only slower to start.
	CacheDir string
}

// Host runs core's operations in a WebAssembly instance. It is safe for
// concurrent use; calls are serialized. Close it to release the runtime.
//
// The hosts.Core methods have no error results (natively they cannot fail),
// so a failure of the module itself, which is a bug, panics with an error
// that says which operation failed and what the guest printed.
type Host struct {
	mu       sync.Mutex
	ctx      context.Context
	cache    wazero.CompilationCache
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	cacheDir string
	inst     *instance // nil until first needed, and after a trap
	stderr   tail
	args     []byte // reused encoding buffer for arguments
}

var _ hosts.Core = (*Host)(nil)

// instance is one instantiated guest with its exports resolved.
type instance struct {
	mod    api.Module
	mem    api.Memory
	buffer api.Function
	ops    map[string]api.Function
	inPtr  uint32 // the guest's argument buffer
	inCap  uint32 // bytes known to fit at inPtr
	stack  [1]uint64
}

// New compiles the embedded module (or loads it from the cache) and
// instantiates it, so that a broken module or engine is reported here, as a
// configuration problem, rather than at the first call.
func New(opts Options) (*Host, error) {
	ctx := context.Background()
	h, err := start(ctx, opts.CacheDir)
	if err != nil && opts.CacheDir != "" {
		// A cache directory that exists but cannot be written (another
		// user's, a read-only mount) fails only when wazero stores the
		// compiled code: compile again without it.
		h, err = start(ctx, "")
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

func start(ctx context.Context, dir string) (*Host, error) {
	h := &Host{ctx: experimental.WithMemoryAllocator(ctx, memoryAllocator())}
	h.cache, h.cacheDir = openCache(dir)
	h.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(h.cache))
	err := func() error {
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, h.rt); err != nil {
			return fmt.Errorf("hosts/wasm: instantiating WASI: %w", err)
		}
		// A cold cache compiles every function; spread them over the CPUs
		// (a warm cache compiles none).
		compileCtx := experimental.WithCompilationWorkers(ctx, goruntime.NumCPU())
		compiled, err := h.rt.CompileModule(compileCtx, module)
		if err != nil {
			return fmt.Errorf("hosts/wasm: compiling the core module: %w", err)
		}
		h.compiled = compiled
		exports := compiled.ExportedFunctions()
		for _, name := range append([]string{"_initialize", abi.Buffer}, abi.Operations...) {
			if exports[name] == nil {
				return fmt.Errorf("hosts/wasm: the core module does not export %q; run `go generate ./hosts/wasm`", name)
			}
		}
		h.inst, err = h.instantiate()
		return err
	}()
	if err != nil {
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

// openCache returns a compilation cache in dir, or in memory (and "") when
// dir is empty or cannot be created. It does not test that dir is writable:
// a warm cache on a read-only mount is only read, and a cache that cannot
// take new code fails the compile, which New then repeats without it.
func openCache(dir string) (wazero.CompilationCache, string) {
	if dir == "" {
		return wazero.NewCompilationCache(), ""
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return wazero.NewCompilationCache(), ""
	}
	return c, dir
}

// CacheDir returns the directory holding compiled code, or "" when the cache
// is in memory only.
func (h *Host) CacheDir() string { return h.cacheDir }

// Close releases the runtime, its instance and the compilation cache. Later
// calls panic.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inst = nil
	var errs []error
	if h.rt != nil {
		errs = append(errs, h.rt.Close(h.ctx))
		h.rt = nil
	}
	if h.cache != nil {
		errs = append(errs, h.cache.Close(h.ctx))
		h.cache = nil
	}
	return errors.Join(errs...)
}

func (h *Host) instantiate() (*instance, error) {
	h.stderr.reset()
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous, so a replacement can be instantiated beside a closed one
		WithStartFunctions("_initialize").
		WithStderr(&h.stderr)
	mod, err := h.rt.InstantiateModule(h.ctx, h.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("hosts/wasm: instantiating the core module: %w%s", err, h.stderr.suffix())
	}
	inst := &instance{mod: mod, mem: mod.Memory(), buffer: mod.ExportedFunction(abi.Buffer), ops: map[string]api.Function{}}
	for _, name := range abi.Operations {
		inst.ops[name] = mod.ExportedFunction(name)
	}
	return inst, nil
}

// call runs one operation: encode writes its arguments, decode reads its
// result. It panics if the module fails (see Host).
func (h *Host) call(op string, encode func(*abi.Writer), decode func(*abi.Reader)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.callLocked(op, encode, decode); err != nil {
		panic(err)
	}
}

func (h *Host) callLocked(op string, encode func(*abi.Writer), decode func(*abi.Reader)) error {
	if h.rt == nil {
		return fmt.Errorf("hosts/wasm: %s called after Close", op)
	}
	if h.inst == nil {
		inst, err := h.instantiate()
		if err != nil {
			return err
		}
		h.inst = inst
	}
	inst := h.inst
	w := abi.Writer{B: h.args[:0]}
	encode(&w)
	h.args = w.B
	n := uint32(len(w.B))
	if n > inst.inCap {
		inst.stack[0] = uint64(n)
		if err := inst.buffer.CallWithStack(h.ctx, inst.stack[:]); err != nil {
			return h.discard(abi.Buffer, err)
		}
		inst.inPtr, inst.inCap = uint32(inst.stack[0]), n
	}
	if !inst.mem.Write(inst.inPtr, w.B) {
		return h.discard(op, errors.New("argument buffer outside linear memory"))
	}
	inst.stack[0] = uint64(n)
	if err := inst.ops[op].CallWithStack(h.ctx, inst.stack[:]); err != nil {
		return h.discard(op, err)
	}
	ptr, size := abi.Unpack(inst.stack[0])
	result, ok := inst.mem.Read(ptr, size)
	if !ok {
		return h.discard(op, errors.New("result outside linear memory"))
	}
	r := abi.NewReader(result)
	decode(r)
	if err := r.Done(); err != nil {
		return h.discard(op, err)
	}
	return nil
}

// discard drops the current instance after a failed call, whose state can
// no longer be trusted, and describes the failure.
func (h *Host) discard(op string, err error) error {
	_ = h.inst.mod.Close(h.ctx)
	h.inst = nil
	return fmt.Errorf("hosts/wasm: %s failed in the core module (discarded): %w%s", op, err, h.stderr.suffix())
}

// tail keeps the last bytes the guest wrote to stderr (its panic message),
// bounded so that a chatty guest cannot grow the plugin's memory.
type tail struct{ b []byte }

const tailMax = 4096

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tail) reset() { t.b = t.b[:0] }

func (t *tail) suffix() string {
	if len(t.b) == 0 {
		return ""
	}
	return "; guest stderr: " + string(t.b)
}
