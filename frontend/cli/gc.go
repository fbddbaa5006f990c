package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/urfave/cli/v2"

	"github.com/etcd-cni/etcd-ipam/store"
)

// gcCommand is CNI GC run by hand: for one node, free the attachments its
// runtime no longer knows. Typical after a runtime lost its state, or for
// a runtime too old to send GC.
func gcCommand() *cli.Command {
	return &cli.Command{
		Name:      "gc",
		Usage:     "release a node's allocations whose container and interface are not in a keep list",
		UsageText: "etcd-ipam gc --config FILE --keep FILE [--node NAME] [--dry-run] [--json]",
		Description: "Reads the attachments to keep from --keep (- for stdin): lines of\n" +
			"\"CONTAINER-ID IFNAME\" (# starts a comment), or JSON as in CNI GC, either a list\n" +
			"[{\"containerID\": ..., \"ifname\": ...}] or an object with\n" +
			"\"cni.dev/valid-attachments\". Every attachment of the node (--node, by default\n" +
			"the name the plugin records on this machine) that is not listed is released,\n" +
			"each only if unchanged since it was listed; other nodes' are never touched.\n" +
			"--dry-run lists what would go and releases nothing.\n\n" +
			"Example:\n\n" +
			"   crictl ps -q | sed 's/$/ eth0/' | etcd-ipam gc --config net.conflist --keep - --dry-run",
		Flags: append(networkFlags(),
			&cli.StringFlag{Name: "keep", Usage: "the attachments to keep, at `FILE` (- for stdin)", TakesFile: true},
			&cli.StringFlag{Name: flagNode, Usage: "collect the allocations of node `NAME`"},
			&cli.BoolFlag{Name: "dry-run", Usage: "list what would be released; release nothing"},
			jsonFlag(),
		),
		Action: runGC,
	}
}

// gcAttachment is one attachment in gc's output; its JSON is stable.
type gcAttachment struct {
	ContainerID string    `json:"containerID"`
	IfName      string    `json:"ifName"`
	Node        string    `json:"node"`
	Created     time.Time `json:"created"`
	IPs         []string  `json:"ips"`
}

// gcReport is the output of gc --json.
type gcReport struct {
	Network string `json:"network"`
	Node    string `json:"node"`
	DryRun  bool   `json:"dryRun"`
	// Stale lists the node's attachments not in the keep list.
	Stale []gcAttachment `json:"stale"`
	// Released counts those released (0 with dryRun); fewer than Stale
	// means some changed after they were listed and were left alone.
	Released int `json:"released"`
}

func runGC(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	keepPath := c.String("keep")
	switch {
	case keepPath == "":
		return usageErrorf("gc needs --keep FILE (- for stdin; an empty list releases all of the node's attachments)")
	case keepPath == "-" && c.String(flagConfig) == "-":
		return usageErrorf("--config and --keep cannot both come from stdin")
	}
	keep, err := readKeep(c, keepPath)
	if err != nil {
		return err
	}
	conf, s, err := openSession(c)
	if err != nil {
		return err
	}
	defer s.Close()
	node, err := nodeName(c, conf)
	if err != nil {
		return err
	}
	stale, err := s.StaleAttachments(c.Context, node, keep)
	if err != nil {
		return err
	}
	report := gcReport{Network: conf.Name, Node: node, DryRun: c.Bool("dry-run"), Stale: []gcAttachment{}}
	for _, att := range stale {
		report.Stale = append(report.Stale, gcAttachment{ContainerID: att.ContainerID, IfName: att.IfName,
			Node: att.Node, Created: att.Created, IPs: attachmentAddrs(att)})
	}
	if !report.DryRun {
		bar := newProgress(c.App.ErrWriter, "releasing", len(stale))
		for start := 0; start < len(stale); start += store.ReleaseBatch {
			batch := stale[start:min(start+store.ReleaseBatch, len(stale))]
			// A deadline per batch, however many.
			n, err := s.ReleaseAttachments(c.Context, batch)
			report.Released += n
			if err != nil {
				bar.Finish()
				return fmt.Errorf("after releasing %d of %d stale attachments: %w", report.Released, len(stale), err)
			}
			bar.Add(len(batch))
		}
		bar.Finish()
	}
	if c.Bool(flagJSON) {
		return writeJSON(c.App.Writer, report)
	}
	verb := "released"
	if report.DryRun {
		verb = "would release"
	}
	for _, a := range report.Stale {
		fmt.Fprintf(c.App.Writer, "%s container %s interface %s: %s\n", verb, cell(a.ContainerID), cell(a.IfName), strings.Join(a.IPs, ", "))
	}
	if report.DryRun {
		fmt.Fprintf(c.App.Writer, "node %s: %d stale %s, nothing released (--dry-run)\n", node, len(stale), pluralize(len(stale), "attachment", "attachments"))
		return nil
	}
	fmt.Fprintf(c.App.Writer, "node %s: released %d of %d stale %s\n", node, report.Released, len(stale), pluralize(len(stale), "attachment", "attachments"))
	if report.Released < len(stale) {
		fmt.Fprintf(c.App.ErrWriter, "%d changed after they were listed and were left alone\n", len(stale)-report.Released)
	}
	return nil
}

// readKeep reads the keep list from path (- for stdin).
func readKeep(c *cli.Context, path string) ([]types.GCAttachment, error) {
	var r io.Reader
	if path == "-" {
		r = stdin(c)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("reading the keep list: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the keep list: %w", err)
	}
	list, err := parseKeep(data)
	if err != nil {
		return nil, fmt.Errorf("the keep list %s: %w", path, err)
	}
	return list, nil
}

// parseKeep reads JSON (a list, or an object with
// "cni.dev/valid-attachments") or lines of "CONTAINER-ID IFNAME".
func parseKeep(data []byte) ([]types.GCAttachment, error) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case bytes.HasPrefix(trimmed, []byte("[")):
		var list []types.GCAttachment
		if err := json.Unmarshal(trimmed, &list); err != nil {
			return nil, fmt.Errorf("not a JSON list of {\"containerID\", \"ifname\"}: %w", err)
		}
		return list, checkKeep(list)
	case bytes.HasPrefix(trimmed, []byte("{")):
		var obj struct {
			Valid *[]types.GCAttachment `json:"cni.dev/valid-attachments"`
		}
		if err := json.Unmarshal(trimmed, &obj); err != nil {
			return nil, fmt.Errorf("not JSON with \"cni.dev/valid-attachments\": %w", err)
		}
		if obj.Valid == nil {
			return nil, fmt.Errorf("the JSON object has no \"cni.dev/valid-attachments\"")
		}
		return *obj.Valid, checkKeep(*obj.Valid)
	}
	var list []types.GCAttachment
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		switch len(fields) {
		case 0:
			continue
		case 2:
			list = append(list, types.GCAttachment{ContainerID: fields[0], IfName: fields[1]})
		default:
			return nil, fmt.Errorf("line %d: %q is not \"CONTAINER-ID IFNAME\"", line, strings.TrimSpace(text))
		}
	}
	return list, sc.Err()
}

// checkKeep rejects entries that could only be typos: keeping nothing by
// mistake would release attachments that are in use.
func checkKeep(list []types.GCAttachment) error {
	for i, k := range list {
		if k.ContainerID == "" || k.IfName == "" {
			return fmt.Errorf("entry %d lacks \"containerID\" or \"ifname\"", i)
		}
	}
	return nil
}
