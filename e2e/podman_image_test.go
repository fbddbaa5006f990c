package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"
)

// writeDockerArchive writes an image of one static binary, FROM scratch,
// as `docker save` would (the docker-archive format `podman load` reads):
// manifest.json, the image config and one layer tar holding the binary at
// /name, which is the entrypoint. No registry is reachable, so an image
// for a runtime other than Docker's daemon is made this way.
func writeDockerArchive(path, tag, binary string) error {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("image %s: %w", tag, err)
	}
	name := "entrypoint"
	var layer bytes.Buffer
	if err := writeTar(&layer, []tarFile{{name, 0o755, bin}}); err != nil {
		return fmt.Errorf("image %s: %w", tag, err)
	}
	layerDigest := sha256hex(layer.Bytes())
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": []string{"/" + name}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerDigest}},
	})
	if err != nil {
		return fmt.Errorf("image %s: %w", tag, err)
	}
	configName := sha256hex(config) + ".json"
	layerName := layerDigest + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{tag},
		"Layers":   []string{layerName},
	}})
	if err != nil {
		return fmt.Errorf("image %s: %w", tag, err)
	}
	var archive bytes.Buffer
	if err := writeTar(&archive, []tarFile{
		{"manifest.json", 0o644, manifest},
		{configName, 0o644, config},
		{layerName, 0o644, layer.Bytes()},
	}); err != nil {
		return fmt.Errorf("image %s: %w", tag, err)
	}
	if err := os.WriteFile(path, archive.Bytes(), 0o644); err != nil {
		return fmt.Errorf("image %s: %w", tag, err)
	}
	return nil
}

// tarFile is one regular file of a tar.
type tarFile struct {
	name string
	mode int64
	data []byte
}

// writeTar writes files as a tar with fixed times and owners, so that the
// same binary gives the same image.
func writeTar(buf *bytes.Buffer, files []tarFile) error {
	tw := tar.NewWriter(buf)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
