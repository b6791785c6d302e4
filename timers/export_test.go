package timers

import (
	"context"

	"github.com/enarx/secbot/store"
)

// Fire makes one firing of d, as a tick does for each due deadline.
func Fire(t *Timers, ctx context.Context, d store.Deadline) (bool, error) { return t.fire(ctx, d) }
