package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"runtime"
	"sort"
	"time"
)

// The images of the runtime tests. No registry is reachable, so each is
// written by the test as a docker-archive tar (what docker save writes)
// and imported into containerd with ctr, or loaded by podman. Their domain is reserved (RFC 2606): nothing
// can ever be pulled from it, so a missing image fails instead of
// reaching out.
const (
	pauseImageRef   = "etcd-ipam-e2e.invalid/pause:1"
	busyboxImageRef = "etcd-ipam-e2e.invalid/busybox:1"
)

// imageSpec is an image of one layer.
type imageSpec struct {
	Ref        string
	Entrypoint []string
	// Files maps a path in the image to a file on the host; each is
	// stored executable.
	Files map[string]string
}

// writeDockerArchive writes img as a docker-archive tar at out: a
// manifest.json naming the config and the layer, the config (whose
// rootfs lists the layer's digest), and the layer, an uncompressed tar.
func writeDockerArchive(out string, img imageSpec) error {
	layer, err := layerTar(img)
	if err != nil {
		return fmt.Errorf("image %s: %w", img.Ref, err)
	}
	layerSum := sha256.Sum256(layer)
	layerHex := hex.EncodeToString(layerSum[:])
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      time.Unix(0, 0).UTC(),
		"config": map[string]any{
			"Entrypoint": img.Entrypoint,
			"Env":        []string{"PATH=/bin"},
		},
		"rootfs": map[string]any{
			"type":     "layers",
			"diff_ids": []string{"sha256:" + layerHex},
		},
	})
	if err != nil {
		return err
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	layerName := layerHex + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{img.Ref},
		"Layers":   []string{layerName},
	}})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{"manifest.json", manifest}, {configName, config}, {layerName, layer}} {
		if err := addTarEntry(tw, f.name, 0o644, f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// layerTar is the image's one layer: its files, their directories first,
// in a fixed order with fixed times, so that the same
// binaries give the same digest.
func layerTar(img imageSpec) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	var names []string
	for name := range img.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for dir := path.Dir(name); dir != "." && dir != "/" && !dirs[dir]; dir = path.Dir(dir) {
			dirs[dir] = true
		}
	}
	var dirList []string
	for dir := range dirs {
		dirList = append(dirList, dir)
	}
	sort.Strings(dirList)
	for _, dir := range dirList {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		data, err := os.ReadFile(img.Files[name])
		if err != nil {
			return nil, err
		}
		if err := addTarEntry(tw, name, 0o755, data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addTarEntry(tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
