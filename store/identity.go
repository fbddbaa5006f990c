package store

import (
	"fmt"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/util/validation"
)

// PodRef names the Kubernetes pod of an attachment, as the runtime sent
// it in CNI_ARGS. It is recorded for display whatever it holds (podman
// sends a container name and no namespace); only a valid one is also an
// identity (IdentityOf).
type PodRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
}

// String is how listings show the pod: NAMESPACE/NAME, or the lone name
// or namespace a runtime sent.
func (p PodRef) String() string {
	switch {
	case p.Namespace == "":
		return p.Name
	case p.Name == "":
		return p.Namespace + "/"
	}
	return p.Namespace + "/" + p.Name
}

// Storable reports whether the records can hold p as it is: names of
// valid UTF-8 within MaxNameLength (empty is fine: a runtime may send a
// name alone).
func (p PodRef) Storable() bool {
	for _, part := range []string{p.Namespace, p.Name, p.UID} {
		if part != "" && checkName(PodName, part) != nil {
			return false
		}
	}
	return true
}

// Identity is whom a hold is for: one interface of a pod, by namespace
// and name, which survive the pod's recreation (its UID does not).
type Identity struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	IfName    string `json:"ifName"`
}

func (id Identity) String() string { return id.Namespace + "/" + id.Name + "/" + id.IfName }

// IdentityOf is the identity of att's pod interface: nil without a pod,
// and nil when the pod's names are not a Kubernetes pod's (a lone name,
// a name with a slash), which are recorded for display only. Holds,
// sticky addresses and reservations match identities alone, so a name no
// pod can have never takes or leaves one.
func IdentityOf(att Attachment) *Identity {
	if att.Pod == nil {
		return nil
	}
	id := &Identity{Namespace: att.Pod.Namespace, Name: att.Pod.Name, IfName: att.IfName}
	if CheckIdentity(*id) != nil {
		return nil
	}
	return id
}

// CheckIdentity rejects what cannot be one interface of a Kubernetes pod:
// the namespace must be a DNS-1123 label and the name a DNS-1123
// subdomain, as the API server requires of every pod, and the interface
// name one that Linux accepts (linuxIfNameProblem). So
// an identity always reads back as NAMESPACE/NAME/IFNAME, and the keys
// built from it stay one level each.
func CheckIdentity(id Identity) error {
	if msgs := validation.IsDNS1123Label(id.Namespace); len(msgs) > 0 {
		return &NameError{What: PodNamespace, Reason: fmt.Sprintf("%q is not a Kubernetes namespace: %s", id.Namespace, strings.Join(msgs, "; "))}
	}
	if msgs := validation.IsDNS1123Subdomain(id.Name); len(msgs) > 0 {
		return &NameError{What: PodName, Reason: fmt.Sprintf("%q is not a Kubernetes pod name: %s", id.Name, strings.Join(msgs, "; "))}
	}
	if reason := linuxIfNameProblem(id.IfName); reason != "" {
		return &NameError{What: IfName, Reason: fmt.Sprintf("%q %s", id.IfName, reason)}
	}
	return nil
}

// maxIfNameLength is Linux's IFNAMSIZ less the terminating NUL.
const maxIfNameLength = 15

// linuxIfNameProblem says why name cannot name a Linux network interface,
// "" if it can: the rule runtimes and CNI apply to CNI_IFNAME.
func linuxIfNameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case len(name) > maxIfNameLength:
		return fmt.Sprintf("is %d bytes long; Linux allows %d", len(name), maxIfNameLength)
	case name == "." || name == "..":
		return "is not a name"
	case strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || unicode.IsSpace(r) }):
		return `contains "/", ":" or a space`
	}
	return ""
}
