package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/enarx/secbot/store"
)

// Queue is what the writer needs of the store: to record a row, in the
// caller's transaction. *store.Store is one.
type Queue interface {
	EnqueueAt(ctx context.Context, lane, kind string, payload json.RawMessage, now, at time.Time, urgent bool) (int64, error)
}

// Enqueue records an effect to be made: its kind and its payload, encoded
// as JSON. Run it in the transaction that decided the effect, so the
// decision and its effects commit together.
func Enqueue(ctx context.Context, q Queue, lane, kind string, payload any, now time.Time) (int64, error) {
	return EnqueueAt(ctx, q, lane, kind, payload, now, now, false)
}

// EnqueueUrgent records an effect someone is waiting on (a reporter's
// answer, their case room): it runs before routine effects.
func EnqueueUrgent(ctx context.Context, q Queue, lane, kind string, payload any, now time.Time) (int64, error) {
	return EnqueueAt(ctx, q, lane, kind, payload, now, now, true)
}

// EnqueueAt records an effect to be made no sooner than at.
func EnqueueAt(ctx context.Context, q Queue, lane, kind string, payload any, now, at time.Time, urgent bool) (int64, error) {
	data, err := json.Marshal(payload)
	if err != nil {
		return 0, fmt.Errorf("encode %s effect: %w", kind, err)
	}
	return q.EnqueueAt(ctx, lane, kind, data, now, at, urgent)
}

// SetPayload replaces a pending effect's payload (an executor recording
// what a retry must know before it acts). It returns store.ErrNotFound if
// the effect is not pending.
func SetPayload(ctx context.Context, st *store.Store, effectID int64, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode payload of effect %d: %w", effectID, err)
	}
	return st.SetEffectPayload(ctx, effectID, data)
}
