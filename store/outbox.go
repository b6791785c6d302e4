package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"go.mau.fi/util/dbutil"

	"github.com/enarx/secbot/disclosure"
)

// Effect is a side effect waiting in (or done from) the outbox. The store
// keeps its lane, kind and payload without knowing their shape: the kinds
// and payloads are the outbox package's and its executors'.
type Effect struct {
	ID            int64
	Lane          string
	Kind          string
	Payload       json.RawMessage
	Attempts      int
	NextAttemptAt time.Time
	CreatedAt     time.Time
	// Urgent effects are what someone waits on; they run first.
	Urgent bool
}

// effectColumns are what Effect.Scan reads.
const effectColumns = `id, lane, kind, payload, attempts, next_attempt_at, created_at, urgent`

// Scan reads a row of effectColumns (dbutil.DataStruct).
func (e Effect) Scan(row dbutil.Scannable) (Effect, error) { return e.scan(row) }

// scan reads a row of effectColumns and, after them, more.
func (e Effect) scan(row dbutil.Scannable, more ...any) (Effect, error) {
	var payload string
	var next, created int64
	err := row.Scan(append([]any{&e.ID, &e.Lane, &e.Kind, &payload, &e.Attempts, &next, &created, &e.Urgent}, more...)...)
	e.Payload = json.RawMessage(payload)
	e.NextAttemptAt, e.CreatedAt = fromMillis(next), fromMillis(created)
	return e, err
}

// Decode unmarshals the effect's payload into v.
func (e Effect) Decode(v any) error {
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("decode %s effect %d: %w", e.Kind, e.ID, err)
	}
	return nil
}

// EnqueueAt records an effect to be made no sooner than at; urgent ones
// (what someone waits on) run before routine ones. The payload is the
// outbox writer's JSON, stored as it is. Run it in the transaction that
// decided the effect, so the decision and its effects commit together.
func (s *Store) EnqueueAt(ctx context.Context, lane, kind string, payload json.RawMessage, now, at time.Time, urgent bool) (int64, error) {
	data := payload
	var id int64
	err := s.db.QueryRow(ctx, `
		INSERT INTO outbox (lane, kind, payload, next_attempt_at, created_at, urgent) VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING id`, lane, kind, string(data), millis(at), millis(now), urgent).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("enqueue %s effect: %w", kind, err)
	}
	return id, nil
}

// DueEffects returns effects that may run now: the oldest pending effect
// of each lane, if its next attempt is due. Up to limit urgent ones come
// first, then up to limit routine ones, so that neither kind can crowd the
// other out of the runner's view.
func (s *Store) DueEffects(ctx context.Context, now time.Time, limit int) ([]Effect, error) {
	urgent, err := s.dueEffects(ctx, now, limit, true)
	if err != nil {
		return nil, err
	}
	routine, err := s.dueEffects(ctx, now, limit, false)
	return append(urgent, routine...), err
}

func (s *Store) dueEffects(ctx context.Context, now time.Time, limit int, urgent bool) ([]Effect, error) {
	return s.effects.QueryMany(ctx, `
		SELECT `+effectColumns+` FROM outbox o
		WHERE state = 'pending' AND next_attempt_at <= $1 AND urgent = $3
		  AND id = (SELECT MIN(id) FROM outbox WHERE lane = o.lane AND state = 'pending')
		ORDER BY next_attempt_at, id LIMIT $2`, millis(now), limit, urgent)
}

// NextEffectAt returns when the earliest pending effect falls due, or the
// zero time if none is pending.
func (s *Store) NextEffectAt(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := s.db.QueryRow(ctx, `SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'`).Scan(&next)
	return nullMillis(next), err
}

// StartAttempt counts an attempt before it is made, so that after a crash
// the next attempt knows an earlier one may have got through.
// It returns ErrNotFound if the effect is no longer pending: a runner's
// view of what is due can be older than the effect's completion.
func (s *Store) StartAttempt(ctx context.Context, effectID int64) (attempts int, err error) {
	var pending bool
	err = s.write(ctx, func(ctx context.Context) error {
		var err error
		attempts, pending, err = scalar[int](ctx, s.db, `UPDATE outbox SET attempts = attempts + 1 WHERE id = $1 AND state = 'pending' RETURNING attempts`, effectID)
		return err
	})
	if err == nil && !pending {
		return 0, ErrNotFound
	}
	return attempts, err
}

// CompleteEffect marks an effect as made, keeping its result. Its payload
// is dropped: what the team wrote to a reporter (an update, a response, a
// reason) stays in the outbox only until it was delivered.
func (s *Store) CompleteEffect(ctx context.Context, effectID int64, result json.RawMessage, now time.Time) error {
	data := result
	return s.write(ctx, func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, `UPDATE outbox SET state = 'done', payload = '{}', result = $2, last_error = '', done_at = $3 WHERE id = $1`,
			effectID, string(data), millis(now))
		return err
	})
}

// SetEffectPayload replaces a pending effect's payload (an executor
// recording what a retry must know before it acts). It returns ErrNotFound
// if the effect is not pending.
func (s *Store) SetEffectPayload(ctx context.Context, effectID int64, payload json.RawMessage) error {
	data := payload
	return s.write(ctx, func(ctx context.Context) error {
		res, err := s.db.Exec(ctx, `UPDATE outbox SET payload = $2 WHERE id = $1 AND state = 'pending'`, effectID, string(data))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return ErrNotFound
		}
		return nil
	})
}

// RetryEffect records a failed attempt and when to try again.
func (s *Store) RetryEffect(ctx context.Context, effectID int64, reason string, next time.Time) error {
	return s.write(ctx, func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, `UPDATE outbox SET last_error = $2, next_attempt_at = $3 WHERE id = $1`, effectID, reason, millis(next))
		return err
	})
}

// FailEffect gives up on an effect that can never succeed; its payload is
// dropped like a made one's. An effect cancelled while its last attempt
// ran stays cancelled.
func (s *Store) FailEffect(ctx context.Context, effectID int64, reason string, now time.Time) error {
	return s.write(ctx, func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, `UPDATE outbox SET state = 'failed', payload = '{}', last_error = $2, done_at = $3 WHERE id = $1 AND state = 'pending'`, effectID, reason, millis(now))
		return err
	})
}

// RefuseEffect ends an effect the domain refused when it was due: nothing
// was made, and it is not tried again (nor counted as failed). Its
// payload is dropped like a made one's. It reports false if the effect was
// no longer pending.
func (s *Store) RefuseEffect(ctx context.Context, effectID int64, reason string, now time.Time) (bool, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context) error {
		res, err := s.db.Exec(ctx, `UPDATE outbox SET state = 'refused', payload = '{}', last_error = $2, done_at = $3 WHERE id = $1 AND state = 'pending'`,
			effectID, reason, millis(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n == 1, err
}

// CancelPendingEffects cancels a case's pending effects of the given kinds
// (in the case's own lane and its GitHub lane), in the caller's
// transaction, and returns the kinds it cancelled, one per effect. An
// effect already under way is not stopped by this: its executor decides
// again before it makes it.
func (s *Store) CancelPendingEffects(ctx context.Context, caseID disclosure.CaseID, kinds []string, reason string, now time.Time) ([]string, error) {
	var cancelled []string
	for _, kind := range kinds {
		res, err := s.db.Exec(ctx, `
			UPDATE outbox SET state = 'cancelled', payload = '{}', last_error = $4, done_at = $5
			WHERE state = 'pending' AND kind = $3 AND lane IN ($1, $2)`,
			CaseLane(caseID), GitHubLane(caseID), kind, reason, millis(now))
		if err != nil {
			return nil, fmt.Errorf("cancel %s effects of %s: %w", kind, caseID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		for range n {
			cancelled = append(cancelled, kind)
		}
	}
	return cancelled, nil
}

// EffectResult returns the state and stored result of an effect.
func (s *Store) EffectResult(ctx context.Context, effectID int64) (state string, result json.RawMessage, err error) {
	var raw string
	err = s.db.QueryRow(ctx, `SELECT state, result FROM outbox WHERE id = $1`, effectID).Scan(&state, &raw)
	return state, json.RawMessage(raw), err
}

// OutboxDepth returns how many effects are pending and when the oldest was recorded.
func (s *Store) OutboxDepth(ctx context.Context) (pending int, oldest time.Time, err error) {
	var first sql.NullInt64
	err = s.db.QueryRow(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE state = 'pending'`).Scan(&pending, &first)
	return pending, nullMillis(first), err
}

// EffectsOfKind lists effects of one kind with their state, oldest first (for tests and status).
func (s *Store) EffectsOfKind(ctx context.Context, kind string) ([]Effect, []string, error) {
	var states []string
	rows, err := s.db.Query(ctx, `SELECT `+effectColumns+`, state FROM outbox WHERE kind = $1 ORDER BY id`, kind)
	out, err := dbutil.NewRowIterWithError(rows, func(row dbutil.Scannable) (Effect, error) {
		var state string
		e, err := Effect{}.scan(row, &state)
		states = append(states, state)
		return e, err
	}, err).AsList()
	if err != nil {
		return nil, nil, err
	}
	return out, states, nil
}
