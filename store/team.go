package store

import (
	"context"

	"github.com/enarx/secbot/disclosure"
)

// TeamSeen returns the team the open case rooms were last brought in line
// with; ok is false before the first time.
func (s *Store) TeamSeen(ctx context.Context) (team []disclosure.Person, ok bool, err error) {
	var recorded int
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM team_seen`).Scan(&recorded); err != nil {
		return nil, false, err
	}
	team, err = column[disclosure.Person](s.db.Query(ctx, `SELECT user_id FROM team_seen WHERE user_id != '' ORDER BY user_id`))
	if err != nil {
		return nil, false, err
	}
	return team, recorded > 0, nil
}

// SetTeamSeen records the team the open case rooms now follow.
func (s *Store) SetTeamSeen(ctx context.Context, team []disclosure.Person) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM team_seen`); err != nil {
		return err
	}
	// The empty row marks "recorded" even for an empty team.
	if _, err := s.db.Exec(ctx, `INSERT INTO team_seen (user_id) VALUES ('')`); err != nil {
		return err
	}
	for _, u := range team {
		if _, err := s.db.Exec(ctx, `INSERT INTO team_seen (user_id) VALUES ($1) ON CONFLICT DO NOTHING`, u); err != nil {
			return err
		}
	}
	return nil
}
