package provision

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rachelcloud/admin/internal/db"
)

// installationID reads this installation's ID from the database once (it never changes).
type installationID struct {
	mu sync.Mutex
	id string
}

func (c *installationID) get(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id != "" {
		return c.id, nil
	}
	id, err := db.New().InstallationID(ctx, pool)
	if err != nil {
		return "", fmt.Errorf("read the installation ID: %w", err)
	}
	c.id = id
	return id, nil
}

// ServerName returns the name of the subscription's server (and SSH key) in Hetzner: what an
// admin types to confirm Destroy.
func (s *Service) ServerName(ctx context.Context, subscriptionID int64) (string, error) {
	inst, err := s.inst.get(ctx, s.pool)
	if err != nil {
		return "", err
	}
	return ServerName(inst, subscriptionID), nil
}

// labelsFor are the labels of a subscription's server and SSH key.
func labelsFor(inst string, sub db.Subscription) map[string]string {
	return map[string]string{LabelManagedBy: LabelManagedByValue, LabelInstallation: inst,
		LabelSubscription: strconv.FormatInt(sub.ID, 10), LabelTag: sub.HetznerTag}
}

// ownedBy says whether a resource's labels make it this subscription's, in this installation.
// Names alone prove nothing: another installation, or the subscription that had this ID before a
// database restore, may have used the same one.
func ownedBy(labels map[string]string, inst string, sub db.Subscription) bool {
	return labels[LabelManagedBy] == LabelManagedByValue && labels[LabelInstallation] == inst &&
		labels[LabelSubscription] == strconv.FormatInt(sub.ID, 10) && labels[LabelTag] == sub.HetznerTag
}

// installationSelector is the label selector of everything this installation created.
func installationSelector(inst string) string {
	return LabelManagedBy + "=" + LabelManagedByValue + "," + LabelInstallation + "=" + inst
}
