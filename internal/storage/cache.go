package storage

import (
	"encoding/json"
	"errors"
	"sync"
)

// Cache keeps the stores of volumes open across uses (a file volume's
// directory handle, an S3 client and its connections), one per volume
// definition: a volume whose definition changed (another root, new
// credentials) is opened afresh. The zero Cache is ready; it is safe for
// concurrent use.
type Cache struct {
	mu     sync.Mutex // protects stores
	stores map[string]Store
}

// Store returns v's store, opening it the first time.
func (c *Cache) Store(v Volume) (Store, error) {
	key, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stores[string(key)]; ok {
		return s, nil
	}
	s, err := Open(v)
	if err != nil {
		return nil, err
	}
	if c.stores == nil {
		c.stores = map[string]Store{}
	}
	c.stores[string(key)] = s
	return s, nil
}

// Close closes every store.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k, s := range c.stores {
		errs = append(errs, s.Close())
		delete(c.stores, k)
	}
	return errors.Join(errs...)
}
