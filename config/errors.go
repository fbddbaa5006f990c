package config

import (
	"github.com/containernetworking/cni/pkg/types"
)

// invalid is a configuration that parses but is wrong: CNI code 7.
func invalid(msg string) *types.Error {
	return types.NewError(types.ErrInvalidNetworkConfig, msg, "")
}
