// Package secretcache reads Secrets' data past the manager's cache (which
// keeps Secrets without their data), at most once per TTL per Secret: the
// credentials of metric providers, webhooks and alert providers.
package secretcache

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Cache is safe for concurrent use; its zero value needs a Reader.
type Cache struct {
	// Reader reads Secrets (the API, not the manager's cache).
	Reader client.Reader
	// TTL is how long a read (or its error) is reused; 5 minutes when 0.
	TTL time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	entries map[types.NamespacedName]entry
}

type entry struct {
	data    map[string][]byte
	err     error
	fetched time.Time
}

// Get returns a Secret's data, read at most once per TTL (an error is kept
// as long, so a missing Secret is not asked for by every round).
func (c *Cache) Get(ctx context.Context, key types.NamespacedName) (map[string][]byte, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now().Sub(e.fetched) < ttl {
		return e.data, e.err
	}
	var s corev1.Secret
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := c.Reader.Get(ctx, key, &s)
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[types.NamespacedName]entry{}
	}
	c.entries[key] = entry{data: s.Data, err: err, fetched: now()}
	c.mu.Unlock()
	return s.Data, err
}
