package ipam

import (
	"context"
	"fmt"

	"github.com/etcd-cni/etcd-ipam/store"
)

// Check verifies that (containerID, ifName) holds addresses and still owns
// every one of them.
func (s *Session) Check(ctx context.Context, containerID, ifName string) error {
	if err := store.CheckAttachment(containerID, ifName); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// Liveness is read with the attachment, and written when due.
	seen := s.sighting(byCHECK)
	att, recorded, err := s.net.AttachmentSeen(ctx, containerID, ifName, &seen)
	if err != nil {
		return err
	}
	s.sightIfDue(ctx, recorded, seen)
	if att == nil {
		return &UnknownAttachmentError{
			Msg:  fmt.Sprintf("container %q interface %q holds no address in network %q", containerID, ifName, s.name),
			Hint: "run ADD for this container first",
		}
	}
	missing, err := s.net.Missing(ctx, *att)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return &UnknownAttachmentError{
			Msg:  fmt.Sprintf("container %q interface %q no longer holds %s in network %q", containerID, ifName, joinAddrs(missing), s.name),
			Hint: "run DEL and ADD again for this container",
		}
	}
	return nil
}
