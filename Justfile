# Recipes mirror the README's commands; CI runs `.ci/run`, which runs `just test`'s command.

# Build the plugin and the CLI into ./bin.
build:
    go build -o bin/etcd ./frontend/cni
    go build -o bin/etcd-ipam ./frontend/cli

# The installer image (images/Dockerfile): static binaries, FROM scratch.
image:
    CGO_ENABLED=0 go build -o images/bin/etcd ./frontend/cni
    CGO_ENABLED=0 go build -o images/bin/etcd-ipam ./frontend/cli
    docker build -t etcd-ipam/installer images

# The whole test suite (the README's second quick-start command).
test:
    go test -timeout 30m ./...

# Build the tests' kube-apiserver into its cache (internal/kubetest) and
# check it, ahead of `just test`: a first build takes 8 to 16 minutes.
kube-apiserver:
    go test -count=1 -timeout 40m -run 'TestServer$' ./internal/kubetest

# The README's first quick-start command: the plugin against an embedded etcd.
demo:
    go run ./frontend/cli demo

# Whole plugin processes against host-local v1.10.0 on an embedded etcd (the
# README's Performance table); `just bench --quick` for a scaled-down run.
bench *ARGS:
    go run ./frontend/cli bench {{ARGS}}

# Rebuild the embedded WebAssembly core (hosts/wasm/core.wasm) after
# changing core/; TestModuleIsFresh fails until you do.
wasm:
    go generate ./hosts/wasm

# A throwaway local etcd on loopback, until Ctrl-C.
dev-etcd:
    go run ./frontend/cli dev-etcd

# Prometheus metrics of networks on :9745 (README, Metrics), e.g.
# `just exporter --config /etc/cni/net.d`.
exporter *ARGS:
    go run ./frontend/cli exporter {{ARGS}}

# Formatting and vet, as CI checks them.
lint:
    test -z "$(gofmt -l $(git ls-files '*.go'))"
    go vet ./...

# What CI runs.
ci:
    bash .ci/run
