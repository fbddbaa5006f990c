package store

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Record writes attachments as if ADDs had reserved them: each attachment
// and its address keys in one transaction, with the values ReserveFirst
// writes, so that they share a create revision and DEL, GC and CHECK treat
// them as their own. Unlike an ADD it leaves round-robin positions alone
// (set them with AdvanceLastReserved) and does not choose: the addresses
// are taken as given. It is the shortcut to a state that thousands of ADDs
// would reach, for benchmarks and tests.
//
// Many attachments share a transaction, within etcd's limit of operations
// per transaction; a transaction writes nothing if any of its attachments
// or addresses exists already, and Record then fails.
func (n *Network) Record(ctx context.Context, atts []Attachment) error {
	var (
		cmps  []clientv3.Cmp
		puts  []clientv3.Op
		first int // index in atts of the first attachment of the batch
	)
	commit := func(end int) error {
		if len(puts) == 0 {
			return nil
		}
		resp, err := n.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
		if err != nil {
			return fmt.Errorf("recording attachments in network %q: %w", n.name, err)
		}
		if !resp.Succeeded {
			return fmt.Errorf("recording attachments in network %q: an attachment or address of containers %q to %q exists already",
				n.name, atts[first].ContainerID, atts[end-1].ContainerID)
		}
		cmps, puts, first = nil, nil, end
		return nil
	}
	for i, att := range atts {
		if err := CheckAttachment(att.ContainerID, att.IfName); err != nil {
			return err
		}
		if len(att.IPs) == 0 {
			return fmt.Errorf("recording container %q interface %q in network %q: no address", att.ContainerID, att.IfName, n.name)
		}
		attCmps, attPuts, err := n.reserveOps(att, att.IPs, nil)
		if err != nil {
			return err
		}
		attCmps = append(attCmps, clientv3.Compare(clientv3.CreateRevision(n.keys.container(att.ContainerID, att.IfName)), "=", 0))
		if len(attCmps) > maxTxnOps || len(attPuts) > maxTxnOps {
			return fmt.Errorf("recording container %q interface %q in network %q: %d addresses do not fit into one transaction",
				att.ContainerID, att.IfName, n.name, len(att.IPs))
		}
		if len(cmps)+len(attCmps) > maxTxnOps || len(puts)+len(attPuts) > maxTxnOps {
			if err := commit(i); err != nil {
				return err
			}
		}
		cmps = append(cmps, attCmps...)
		puts = append(puts, attPuts...)
	}
	return commit(len(atts))
}
