package testbed

import (
	"context"
	"fmt"
	"time"
)

// QueueRaw records an effect in the stopped bot's outbox exactly as given
// (lane, kind, JSON payload), as an older secbot would have left it: a
// test of rows queued before an upgrade. It returns the row's ID.
func (p *Bot) QueueRaw(ctx context.Context, lane, kind, payload string) (int64, error) {
	if p.Running() {
		return 0, fmt.Errorf("the bot is running")
	}
	db, err := p.OpenDB(false)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	now := time.Now().UnixMilli()
	var id int64
	err = db.QueryRowContext(ctx, `INSERT INTO outbox (lane, kind, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		lane, kind, payload, now, now).Scan(&id)
	return id, err
}

// EffectState returns the state of an outbox row (pending, done, failed,
// refused, cancelled), read from the bot's database.
func (p *Bot) EffectState(ctx context.Context, id int64) (string, error) {
	db, err := p.OpenDB(true)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var state string
	err = db.QueryRowContext(ctx, `SELECT state FROM outbox WHERE id = $1`, id).Scan(&state)
	return state, err
}
