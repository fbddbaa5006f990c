// Package layout checks that the repository's architecture is what
// docs/DESIGN.md says it is: the package map lists exactly the packages
// `go list` finds, each imports only what its row allows, and the shipped
// binaries link no test code.
package layout

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const module = "github.com/etcd-cni/etcd-ipam"

// root is the module's directory: this package is two levels below it.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

type pkg struct {
	ImportPath string
	Imports    []string
}

// goList lists the module's packages with their imports.
func goList(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// row is one line of DESIGN.md's package map.
type row struct {
	stdOnly bool
	allowed []string
}

var backticked = regexp.MustCompile("`([^`]+)`")

// packageMap reads the table under "## Package map" in docs/DESIGN.md:
// | `package` | what it owns | what it may import |
func packageMap(t *testing.T) map[string]row {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root(t), "docs", "DESIGN.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Package map\n")
	if !ok {
		t.Fatal(`docs/DESIGN.md has no "## Package map" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]row{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		r := row{stdOnly: strings.Contains(cells[3], "standard library only")}
		for _, m := range backticked.FindAllStringSubmatch(cells[3], -1) {
			r.allowed = append(r.allowed, m[1])
		}
		rows[name] = r
	}
	return rows
}

func TestPackageMapMatchesGoList(t *testing.T) {
	rows := packageMap(t)
	var listed, mapped []string
	for _, p := range goList(t, "./...") {
		listed = append(listed, strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/"))
	}
	for name := range rows {
		mapped = append(mapped, name)
	}
	slices.Sort(listed)
	slices.Sort(mapped)
	if diff := cmp.Diff(listed, mapped); diff != "" {
		t.Errorf("docs/DESIGN.md's package map does not list what go list ./... finds (-go list +map):\n%s", diff)
	}
}

func TestPackagesImportOnlyWhatTheMapAllows(t *testing.T) {
	rows := packageMap(t)
	for _, p := range goList(t, "./...") {
		name := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		r, ok := rows[name]
		if !ok {
			continue // TestPackageMapMatchesGoList reports it
		}
		for _, imp := range p.Imports {
			internal := strings.HasPrefix(imp, module+"/")
			std := !strings.Contains(strings.Split(imp, "/")[0], ".")
			switch {
			case internal && !slices.Contains(r.allowed, strings.TrimPrefix(imp, module+"/")):
				t.Errorf("%s imports %s, which docs/DESIGN.md does not allow it", name, imp)
			case r.stdOnly && !std:
				t.Errorf("%s imports %s, but docs/DESIGN.md says standard library only", name, imp)
			}
		}
	}
}

// TestStoreKnowsNothingOfCNI: the store's errors are typed and mapped to
// CNI codes by package ipam alone.
func TestStoreKnowsNothingOfCNI(t *testing.T) {
	for _, p := range goList(t, "./store") {
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "github.com/containernetworking/") || imp == module+"/config" {
				t.Errorf("store imports %s", imp)
			}
		}
	}
}

// TestShippedBinariesLinkNoTestCode: package testing in a binary means a
// test helper was linked into what users run.
func TestShippedBinariesLinkNoTestCode(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./frontend/cli", "./frontend/cni")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "testing" || strings.HasSuffix(dep, "test") && strings.HasPrefix(dep, module) {
			t.Errorf("the shipped binaries link %s", dep)
		}
	}
}
