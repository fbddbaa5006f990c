package kubernetes

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/etcd-cni/etcd-ipam/config"
	"github.com/etcd-cni/etcd-ipam/core"
)

// The repository root, from this package's directory.
const root = "../.."

// readRepoFile returns one of the repository's files.
func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// submatch returns the first group of re in s, failing the test when
// there is none: the file it reads has changed shape.
func submatch(t *testing.T, re, s, what string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("cannot find %s (%s)", what, re)
	}
	return m[1]
}

// installerImage is the image `just image` builds.
func installerImage(t *testing.T) string {
	t.Helper()
	return submatch(t, `(?m)^\s*docker build -t (\S+) images\s*$`, readRepoFile(t, "Justfile"), "the Justfile's docker build -t")
}

// imagePaths are the files images/Dockerfile copies into the image, and
// entrypoint is its ENTRYPOINT.
func imageContents(t *testing.T) (imagePaths, entrypoint []string) {
	t.Helper()
	dockerfile := readRepoFile(t, "images/Dockerfile")
	for _, m := range regexp.MustCompile(`(?m)^COPY \S+ (\S+)$`).FindAllStringSubmatch(dockerfile, -1) {
		imagePaths = append(imagePaths, m[1])
	}
	ep := submatch(t, `(?m)^ENTRYPOINT (\[.*\])$`, dockerfile, "the Dockerfile's ENTRYPOINT")
	if err := json.Unmarshal([]byte(ep), &entrypoint); err != nil {
		t.Fatalf("ENTRYPOINT %s: %v", ep, err)
	}
	return imagePaths, entrypoint
}

// podSpec is one workload's pod template, named for messages.
type podSpec struct {
	name, namespace string
	labels          map[string]string
	spec            *corev1.PodSpec
}

func (m *manifests) pods() []podSpec {
	var pods []podSpec
	for _, d := range m.daemonSets {
		pods = append(pods, podSpec{"DaemonSet " + d.Name, d.Namespace, d.Spec.Template.Labels, &d.Spec.Template.Spec})
	}
	for _, d := range m.deployments {
		pods = append(pods, podSpec{"Deployment " + d.Name, d.Namespace, d.Spec.Template.Labels, &d.Spec.Template.Spec})
	}
	return pods
}

func (p podSpec) allContainers() []corev1.Container {
	return append(slices.Clone(p.spec.InitContainers), p.spec.Containers...)
}

func (p podSpec) volume(name string) *corev1.Volume {
	for i := range p.spec.Volumes {
		if p.spec.Volumes[i].Name == name {
			return &p.spec.Volumes[i]
		}
	}
	return nil
}

func (m *manifests) secret(namespace, name string) *corev1.Secret {
	for _, s := range m.secrets {
		if s.Namespace == namespace && s.Name == name {
			return s
		}
	}
	return nil
}

func (m *manifests) configMap(namespace, name string) *corev1.ConfigMap {
	for _, c := range m.configMaps {
		if c.Namespace == namespace && c.Name == name {
			return c
		}
	}
	return nil
}

// secretKeys are the file names a Secret's volume holds.
func secretKeys(s *corev1.Secret) []string {
	var keys []string
	for k := range s.Data {
		keys = append(keys, k)
	}
	for k := range s.StringData {
		keys = append(keys, k)
	}
	return keys
}

func TestEveryKindIsThere(t *testing.T) {
	m := loadManifests(t)
	for _, c := range []struct {
		kind    string
		want, n int
	}{
		{"Namespace", 1, len(m.namespaces)}, {"Secret", 1, len(m.secrets)}, {"ConfigMap", 1, len(m.configMaps)},
		{"DaemonSet", 1, len(m.daemonSets)}, {"Deployment", 2, len(m.deployments)}, {"Service", 1, len(m.services)},
		{"NetworkAttachmentDefinition", 1, len(m.nads)}, {"ServiceAccount", 1, len(m.serviceAccounts)},
		{"ClusterRole", 1, len(m.clusterRoles)}, {"ClusterRoleBinding", 1, len(m.clusterRoleBindings)},
		{"Role", 1, len(m.roles)}, {"RoleBinding", 1, len(m.roleBindings)},
	} {
		if c.n != c.want {
			t.Errorf("%d objects of kind %s, want %d", c.n, c.kind, c.want)
		}
	}
}

func TestImagesAreTheInstallerImage(t *testing.T) {
	m := loadManifests(t)
	image := installerImage(t)
	imagePaths, _ := imageContents(t)
	for _, p := range m.pods() {
		for _, c := range p.allContainers() {
			where := fmt.Sprintf("%s, container %s", p.name, c.Name)
			if c.Image != image {
				t.Errorf("%s: image %q, want %q (the Justfile's image recipe)", where, c.Image, image)
			}
			if c.ImagePullPolicy != corev1.PullIfNotPresent {
				t.Errorf("%s: imagePullPolicy %q, want IfNotPresent", where, c.ImagePullPolicy)
			}
			if len(c.Command) > 0 && !slices.Contains(imagePaths, c.Command[0]) {
				t.Errorf("%s: command %q is not in the image, which holds %q", where, c.Command[0], imagePaths)
			}
		}
	}
}

func TestDaemonSetInstallsIntoEveryNodesCNIBin(t *testing.T) {
	m := loadManifests(t)
	_, entrypoint := imageContents(t)
	if len(entrypoint) < 2 || entrypoint[1] != "install" {
		t.Fatalf("the image's ENTRYPOINT is %q, not etcd-ipam install", entrypoint)
	}
	// Where `etcd-ipam install` copies to unless told otherwise.
	dest := submatch(t, `defaultInstallDest\s*=\s*"([^"]+)"`, readRepoFile(t, "frontend/cli/install.go"), "install's default --dest")
	for _, ds := range m.daemonSets {
		p := podSpec{"DaemonSet " + ds.Name, ds.Namespace, ds.Spec.Template.Labels, &ds.Spec.Template.Spec}
		installs := 0
		if len(p.spec.InitContainers) > 0 {
			t.Errorf("%s: init containers; the one container installs", p.name)
		}
		for _, c := range p.spec.Containers {
			if len(c.Command) > 0 || !slices.Equal(c.Args, []string{"--wait", "--node-name", "$(NODE_NAME)"}) {
				t.Errorf("%s: container %s runs %q %q, want the image's entrypoint with --wait (install, then keep running) and --node-name $(NODE_NAME)", p.name, c.Name, c.Command, c.Args)
				continue
			}
			installs++
			// The plugin must record the Kubernetes node name, which
			// the pod reconciler compares with Nodes: install writes it
			// to the node's config.NodeNameFile.
			e := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "NODE_NAME" })
			if e < 0 || c.Env[e].ValueFrom == nil || c.Env[e].ValueFrom.FieldRef == nil || c.Env[e].ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
				t.Errorf("%s: container %s: NODE_NAME is not the downward API's spec.nodeName", p.name, c.Name)
			}
			nameDir := path.Dir("/host" + config.NodeNameFile)
			n := slices.IndexFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return path.Clean(vm.MountPath) == nameDir })
			if n < 0 {
				t.Errorf("%s: container %s mounts nothing at %s, where install records the node name", p.name, c.Name, nameDir)
			} else if v := p.volume(c.VolumeMounts[n].Name); v == nil || v.HostPath == nil || path.Clean(v.HostPath.Path) != path.Dir(config.NodeNameFile) || c.VolumeMounts[n].ReadOnly {
				t.Errorf("%s: container %s: %s is not the node's %s, writable", p.name, c.Name, nameDir, path.Dir(config.NodeNameFile))
			}
			i := slices.IndexFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return path.Clean(vm.MountPath) == dest })
			if i < 0 {
				t.Errorf("%s: container %s mounts nothing at %s, where install copies the plugin", p.name, c.Name, dest)
				continue
			}
			v := p.volume(c.VolumeMounts[i].Name)
			if v == nil || v.HostPath == nil || path.Clean(v.HostPath.Path) != "/opt/cni/bin" {
				t.Errorf("%s: container %s: %s is not the node's /opt/cni/bin", p.name, c.Name, dest)
			}
			if c.VolumeMounts[i].ReadOnly {
				t.Errorf("%s: container %s mounts %s read-only", p.name, c.Name, dest)
			}
		}
		if installs != 1 {
			t.Errorf("%s: %d containers run the image's entrypoint (install), want 1", p.name, installs)
		}
		if !slices.ContainsFunc(p.spec.Tolerations, func(tol corev1.Toleration) bool {
			return tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == ""
		}) {
			t.Errorf("%s: no toleration of every taint, so some nodes would get no plugin", p.name)
		}
		if p.spec.HostNetwork {
			t.Errorf("%s: hostNetwork; copying a file does not need it", p.name)
		}
	}
}

// exporter returns the Deployment's exporter container.
// exporters are the Deployments that run the exporter.
func (m *manifests) exporters() []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range m.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if slices.Contains(c.Args, "exporter") {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

func exporter(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i, c := range d.Spec.Template.Spec.Containers {
		if slices.Contains(c.Args, "exporter") {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("Deployment %s has no container running etcd-ipam exporter", d.Name)
	return nil
}

// flagValues returns the values of a repeatable --name VALUE flag.
func flagValues(args []string, name string) []string {
	var values []string
	for i := 0; i < len(args); i++ {
		if v, ok := strings.CutPrefix(args[i], name+"="); ok {
			values = append(values, v)
		} else if args[i] == name && i+1 < len(args) {
			values = append(values, args[i+1])
			i++
		}
	}
	return values
}

func TestExporterServiceReachesTheExporter(t *testing.T) {
	m := loadManifests(t)
	for _, d := range m.exporters() {
		podLabels := labels.Set(d.Spec.Template.Labels)
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(podLabels) {
			t.Errorf("Deployment %s: its selector does not match its own pods", d.Name)
		}
		c := exporter(t, d)
		if got, want := c.Command, []string{"/opt/etcd-ipam/bin/etcd-ipam"}; !slices.Equal(got, want) {
			t.Errorf("Deployment %s: command %q, want %q", d.Name, got, want)
		}
		listen := flagValues(c.Args, "--listen")
		if len(listen) != 1 {
			t.Fatalf("Deployment %s: args %q give --listen %d times, want once", d.Name, c.Args, len(listen))
		}
		_, listenPort, err := net.SplitHostPort(listen[0])
		if err != nil {
			t.Fatalf("Deployment %s: --listen %q: %v", d.Name, listen[0], err)
		}
		if len(c.Ports) != 1 || strconv.Itoa(int(c.Ports[0].ContainerPort)) != listenPort {
			t.Fatalf("Deployment %s: container ports %v, want exactly the --listen port %s", d.Name, c.Ports, listenPort)
		}
		cport := c.Ports[0]

		found := 0
		for _, s := range m.services {
			if s.Namespace != d.Namespace || len(s.Spec.Selector) == 0 ||
				!labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
				continue
			}
			found++
			for _, ds := range m.daemonSets {
				if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(ds.Spec.Template.Labels)) {
					t.Errorf("Service %s also selects DaemonSet %s's pods, which serve nothing", s.Name, ds.Name)
				}
			}
			if len(s.Spec.Ports) != 1 {
				t.Fatalf("Service %s: %d ports, want 1", s.Name, len(s.Spec.Ports))
			}
			sp := s.Spec.Ports[0]
			if sp.Name != "metrics" || sp.Port != cport.ContainerPort {
				t.Errorf("Service %s: port %s %d, want metrics %d", s.Name, sp.Name, sp.Port, cport.ContainerPort)
			}
			if tp := sp.TargetPort.String(); tp != cport.Name && tp != strconv.Itoa(int(cport.ContainerPort)) {
				t.Errorf("Service %s: targetPort %s is not the exporter's port %s (%d)", s.Name, tp, cport.Name, cport.ContainerPort)
			}
			for k, want := range map[string]string{
				"prometheus.io/scrape": "true",
				"prometheus.io/port":   strconv.Itoa(int(sp.Port)),
			} {
				if got := s.Annotations[k]; got != want {
					t.Errorf("Service %s: annotation %s is %q, want %q", s.Name, k, got, want)
				}
			}
		}
		if found != 1 {
			t.Errorf("Deployment %s: %d Services select its pods, want 1", d.Name, found)
		}

		configs := flagValues(c.Args, "--config")
		if len(configs) == 0 {
			t.Errorf("Deployment %s: no --config", d.Name)
		}
		p := podSpec{"Deployment " + d.Name, d.Namespace, d.Spec.Template.Labels, &d.Spec.Template.Spec}
		for _, cfg := range configs {
			vm := mountOf(c, cfg)
			if vm == nil {
				t.Errorf("Deployment %s: --config %s is in no volume the container mounts", d.Name, cfg)
				continue
			}
			if v := p.volume(vm.Name); v == nil || v.ConfigMap == nil {
				t.Errorf("Deployment %s: --config %s is not in a ConfigMap's volume", d.Name, cfg)
			}
		}
	}
}

// mountOf returns the container's mount that holds file, if any.
func mountOf(c *corev1.Container, file string) *corev1.VolumeMount {
	file = path.Clean(file)
	for i, vm := range c.VolumeMounts {
		mp := path.Clean(vm.MountPath)
		if file == mp || strings.HasPrefix(file, mp+"/") {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func TestReferencesResolve(t *testing.T) {
	m := loadManifests(t)
	namespaces := []string{"default"}
	for _, ns := range m.namespaces {
		namespaces = append(namespaces, ns.Name)
	}
	check := func(kind, name, namespace string) {
		if !slices.Contains(namespaces, namespace) {
			t.Errorf("%s %s: namespace %q is neither default nor in the manifests", kind, name, namespace)
		}
	}
	for _, o := range m.secrets {
		check("Secret", o.Name, o.Namespace)
	}
	for _, o := range m.configMaps {
		check("ConfigMap", o.Name, o.Namespace)
	}
	for _, o := range m.services {
		check("Service", o.Name, o.Namespace)
	}
	for _, o := range m.nads {
		check("NetworkAttachmentDefinition", o.Name, o.Namespace)
	}
	for _, p := range m.pods() {
		check(p.name, "", p.namespace)
		for _, c := range p.allContainers() {
			for _, vm := range c.VolumeMounts {
				if p.volume(vm.Name) == nil {
					t.Errorf("%s, container %s: mounts volume %q, which the pod does not have", p.name, c.Name, vm.Name)
				}
			}
		}
		for _, v := range p.spec.Volumes {
			switch {
			case v.Secret != nil:
				s := m.secret(p.namespace, v.Secret.SecretName)
				if s == nil {
					t.Errorf("%s: volume %s: no Secret %s/%s in the manifests", p.name, v.Name, p.namespace, v.Secret.SecretName)
					continue
				}
				for _, item := range v.Secret.Items {
					if !slices.Contains(secretKeys(s), item.Key) {
						t.Errorf("%s: volume %s: Secret %s has no key %s", p.name, v.Name, s.Name, item.Key)
					}
				}
			case v.ConfigMap != nil:
				cm := m.configMap(p.namespace, v.ConfigMap.Name)
				if cm == nil {
					t.Errorf("%s: volume %s: no ConfigMap %s/%s in the manifests", p.name, v.Name, p.namespace, v.ConfigMap.Name)
					continue
				}
				for _, item := range v.ConfigMap.Items {
					if _, ok := cm.Data[item.Key]; !ok {
						t.Errorf("%s: volume %s: ConfigMap %s has no key %s", p.name, v.Name, cm.Name, item.Key)
					}
				}
			case v.HostPath != nil:
			default:
				t.Errorf("%s: volume %s is of a kind this test does not resolve", p.name, v.Name)
			}
		}
	}
}

// loadNetwork loads a network configuration (a plugin configuration or a
// .conflist) as the plugin gets it from a runtime, which for a .conflist
// is its first plugin whose ipam is etcd, with the list's name and
// cniVersion, and checks its ranges with the core's rules.
func loadNetwork(t *testing.T, what, conf string) *config.Network {
	t.Helper()
	var list struct {
		Name       string           `json:"name"`
		CNIVersion string           `json:"cniVersion"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal([]byte(conf), &list); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	plugin := []byte(conf)
	if list.Plugins != nil {
		i := slices.IndexFunc(list.Plugins, func(p map[string]any) bool {
			ipam, _ := p["ipam"].(map[string]any)
			return ipam != nil && ipam["type"] == "etcd"
		})
		if i < 0 {
			t.Fatalf(`%s: no plugin has "ipam": {"type": "etcd"}`, what)
		}
		p := list.Plugins[i]
		p["name"], p["cniVersion"] = list.Name, list.CNIVersion
		var err error
		if plugin, err = json.Marshal(p); err != nil {
			t.Fatal(err)
		}
	}
	n, err := config.Load(plugin, "")
	if err != nil {
		t.Fatalf("%s: the plugin would refuse it: %v", what, err)
	}
	for _, problem := range core.ValidateRangeSets(n.RangeSets) {
		t.Errorf("%s: %v", what, problem)
	}
	if !n.Etcd.Secure() {
		t.Errorf("%s: etcd is not reached over https", what)
	}
	for _, f := range []string{n.Etcd.CertFile, n.Etcd.KeyFile, n.Etcd.CAFile} {
		if !filepath.IsAbs(f) {
			t.Errorf("%s: TLS file %q is not an absolute path", what, f)
		}
	}
	checkDocumentationAddresses(t, what, n)
	return n
}

// Examples use only the addresses set aside for documentation, so that
// none is anybody's real network.
var documentation = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32"),
}

func checkDocumentationAddresses(t *testing.T, what string, n *config.Network) {
	t.Helper()
	inDocumentation := func(a netip.Addr) bool {
		return slices.ContainsFunc(documentation, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	for _, set := range n.RangeSets {
		for _, r := range set {
			p, err := netip.ParsePrefix(r.Subnet)
			if err != nil || !inDocumentation(p.Addr()) || p.Bits() < 24 {
				t.Errorf("%s: subnet %s is not inside a documentation range", what, r.Subnet)
			}
		}
	}
	for _, ep := range n.Etcd.Endpoints {
		u, err := url.Parse(ep)
		if err != nil {
			t.Errorf("%s: etcd endpoint %s: %v", what, ep, err)
			continue
		}
		a, err := netip.ParseAddr(u.Hostname())
		if err != nil || !inDocumentation(a) {
			t.Errorf("%s: etcd endpoint %s is not a documentation address", what, ep)
		}
	}
}

func TestNetworksLoadWithThePluginsLoader(t *testing.T) {
	m := loadManifests(t)
	exporterNets := map[string]*config.Network{}
	for _, d := range m.exporters() {
		c := exporter(t, d)
		p := podSpec{"Deployment " + d.Name, d.Namespace, d.Spec.Template.Labels, &d.Spec.Template.Spec}
		for _, vm := range c.VolumeMounts {
			v := p.volume(vm.Name)
			if v == nil || v.ConfigMap == nil {
				continue
			}
			cm := m.configMap(d.Namespace, v.ConfigMap.Name)
			if cm == nil {
				continue // TestReferencesResolve reports it
			}
			for key, conf := range cm.Data {
				what := fmt.Sprintf("ConfigMap %s, %s", cm.Name, key)
				if !strings.HasSuffix(key, ".conflist") {
					t.Errorf("%s: the exporter reads only .conflist files", what)
				}
				n := loadNetwork(t, what, conf)
				exporterNets[n.Name] = n
				// The exporter reads its TLS files from the Secret's volume.
				for _, f := range []string{n.Etcd.CertFile, n.Etcd.KeyFile, n.Etcd.CAFile} {
					fm := mountOf(c, f)
					var fv *corev1.Volume
					if fm != nil {
						fv = p.volume(fm.Name)
					}
					if fv == nil || fv.Secret == nil {
						t.Errorf("%s: TLS file %s is in no Secret the exporter mounts", what, f)
						continue
					}
					s := m.secret(d.Namespace, fv.Secret.SecretName)
					if s != nil && !slices.Contains(secretKeys(s), path.Base(f)) {
						t.Errorf("%s: TLS file %s: Secret %s has no key %s", what, f, s.Name, path.Base(f))
					}
				}
			}
		}
	}
	for _, nad := range m.nads {
		what := "NetworkAttachmentDefinition " + nad.Name
		n := loadNetwork(t, what, nad.Spec.Config)
		// The same network as the exporter sees it, but for the TLS
		// files, which are on the node rather than in a pod.
		e, ok := exporterNets[n.Name]
		if !ok {
			t.Errorf("%s: network %s is not in the exporter's ConfigMap", what, n.Name)
			continue
		}
		if diff := cmp.Diff(e.RangeSets, n.RangeSets); diff != "" {
			t.Errorf("%s: ranges differ from the exporter's (-exporter +NAD):\n%s", what, diff)
		}
		if diff := cmp.Diff(e.Etcd.Endpoints, n.Etcd.Endpoints); diff != "" {
			t.Errorf("%s: etcd endpoints differ from the exporter's (-exporter +NAD):\n%s", what, diff)
		}
	}
}
