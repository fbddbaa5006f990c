// Package kubernetes holds the Kubernetes manifests that deploy the plugin
// (the *.yaml files beside this one; README, "Deploying on Kubernetes with
// Multus"). It has no code: its tests decode every manifest strictly into
// the Kubernetes API types and check that the pieces fit together, that
// the images are the one images/Dockerfile builds, and that the network
// configurations load with the plugin's own loader.
package kubernetes
