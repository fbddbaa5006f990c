package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// networkAttachmentDefinition is Multus's CRD, which k8s.io/api does not
// have: its whole schema is a JSON network configuration in spec.config.
type networkAttachmentDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Config string `json:"config"`
	} `json:"spec"`
}

var nadKind = schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"}

// scheme maps an apiVersion and kind to the Go type the API server decodes
// it into, so that a manifest's kind is checked against Kubernetes' own
// registry rather than a table of ours.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, rbacv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// decodeObject decodes one YAML document into the type its apiVersion and
// kind name, refusing anything the type does not have.
func decodeObject(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
	var obj any
	if gvk == nadKind {
		obj = new(networkAttachmentDefinition)
	} else {
		o, err := scheme.New(gvk)
		if err != nil {
			return nil, fmt.Errorf("apiVersion %q kind %q: %w", tm.APIVersion, tm.Kind, err)
		}
		obj = o
	}
	if err := decodeStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// decodeStrict decodes YAML into a typed object, failing on unknown and
// duplicate fields. encoding/json matches keys regardless of case, which
// the API server does not (it would drop "ImagePullPolicy"), so every key
// written must also come back, spelled the same, when the object is
// encoded again.
func decodeStrict(doc []byte, into any) error {
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		return err
	}
	written, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	decoded, err := json.Marshal(into)
	if err != nil {
		return err
	}
	var w, d any
	if err := json.Unmarshal(written, &w); err != nil {
		return err
	}
	if err := json.Unmarshal(decoded, &d); err != nil {
		return err
	}
	return contained(w, d, "")
}

// contained reports the first part of written that decoded lacks or reads
// differently.
func contained(written, decoded any, path string) error {
	switch w := written.(type) {
	case map[string]any:
		d, ok := decoded.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: an object that is not read as one", path)
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := strings.TrimPrefix(path+"."+k, ".")
			dv, ok := d[k]
			if !ok {
				return fmt.Errorf("unknown field %q", p)
			}
			if err := contained(w[k], dv, p); err != nil {
				return err
			}
		}
	case []any:
		d, ok := decoded.([]any)
		if !ok || len(d) != len(w) {
			return fmt.Errorf("%s: a list that is not read as written", path)
		}
		for i := range w {
			if err := contained(w[i], d[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	default:
		if !reflect.DeepEqual(written, decoded) {
			return fmt.Errorf("%s: %v is read as %v", path, written, decoded)
		}
	}
	return nil
}

// splitDocuments splits a multi-document YAML file at its "---" lines and
// drops documents that hold only comments.
func splitDocuments(data []byte) ([][]byte, error) {
	var docs [][]byte
	for _, doc := range bytes.Split(append([]byte("\n"), data...), []byte("\n---\n")) {
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if string(j) != "null" {
			docs = append(docs, doc)
		}
	}
	return docs, nil
}

// manifests is every object in this directory's *.yaml files, by kind.
type manifests struct {
	namespaces  []*corev1.Namespace
	secrets     []*corev1.Secret
	configMaps  []*corev1.ConfigMap
	daemonSets  []*appsv1.DaemonSet
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	nads        []*networkAttachmentDefinition

	serviceAccounts     []*corev1.ServiceAccount
	clusterRoles        []*rbacv1.ClusterRole
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
	roles               []*rbacv1.Role
	roleBindings        []*rbacv1.RoleBinding
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no *.yaml manifests")
	}
	m := &manifests{}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := splitDocuments(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for i, doc := range docs {
			obj, err := decodeObject(doc)
			if err != nil {
				t.Fatalf("%s, document %d: %v", file, i+1, err)
			}
			switch o := obj.(type) {
			case *corev1.Namespace:
				m.namespaces = append(m.namespaces, o)
			case *corev1.Secret:
				m.secrets = append(m.secrets, o)
			case *corev1.ConfigMap:
				m.configMaps = append(m.configMaps, o)
			case *appsv1.DaemonSet:
				m.daemonSets = append(m.daemonSets, o)
			case *appsv1.Deployment:
				m.deployments = append(m.deployments, o)
			case *corev1.Service:
				m.services = append(m.services, o)
			case *networkAttachmentDefinition:
				m.nads = append(m.nads, o)
			case *corev1.ServiceAccount:
				m.serviceAccounts = append(m.serviceAccounts, o)
			case *rbacv1.ClusterRole:
				m.clusterRoles = append(m.clusterRoles, o)
			case *rbacv1.ClusterRoleBinding:
				m.clusterRoleBindings = append(m.clusterRoleBindings, o)
			case *rbacv1.Role:
				m.roles = append(m.roles, o)
			case *rbacv1.RoleBinding:
				m.roleBindings = append(m.roleBindings, o)
			default:
				t.Fatalf("%s, document %d: %T is not a kind these manifests are meant to hold", file, i+1, obj)
			}
		}
	}
	return m
}

// A Deployment whose fields are all spelled right, to misspell below.
const validDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
spec:
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
        - name: x
          image: etcd-ipam/installer
          imagePullPolicy: IfNotPresent
`

func TestDecoderRejectsWhatTheAPIServerWouldNotRead(t *testing.T) {
	if _, err := decodeObject([]byte(validDeployment)); err != nil {
		t.Fatalf("the well-spelled Deployment: %v", err)
	}
	tests := []struct {
		name, doc string
	}{
		{"misspelled field", strings.Replace(validDeployment, "imagePullPolicy", "imagePulPolicy", 1)},
		{"field in the wrong case", strings.Replace(validDeployment, "imagePullPolicy", "ImagePullPolicy", 1)},
		{"field at the wrong level", strings.Replace(validDeployment, "  selector:", "  replica: 1\n  selector:", 1)},
		{"duplicate field", strings.Replace(validDeployment, "kind: Deployment", "kind: Deployment\nkind: Deployment", 1)},
		{"misspelled kind", strings.Replace(validDeployment, "kind: Deployment", "kind: Deploymnet", 1)},
		{"kind of another apiVersion", strings.Replace(validDeployment, "apps/v1", "v1", 1)},
		{"misspelled NetworkAttachmentDefinition field", `
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: x}
spec:
  confg: "{}"
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if obj, err := decodeObject([]byte(tt.doc)); err == nil {
				t.Errorf("decoded as %T without an error:\n%s", obj, tt.doc)
			}
		})
	}
}

func TestSplitDocuments(t *testing.T) {
	docs, err := splitDocuments([]byte("# a comment only\n---\na: 1\n---\n---\nb: 2\n# trailing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2: %q", len(docs), docs)
	}
}
