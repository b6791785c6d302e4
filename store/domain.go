package store

import (
	"context"

	"github.com/enarx/secbot/disclosure"
)

// DomainCase reads a stored case as the domain decides on it: with its
// embargo, deadlines and need-to-know list.
func (s *Store) DomainCase(ctx context.Context, cs *Case) (*disclosure.Case, error) {
	c := &disclosure.Case{ID: cs.ID, Reporter: cs.Reporter, Stage: cs.Stage, Handler: cs.Handler,
		CreatedAt: cs.CreatedAt, Advisory: cs.GHSAID, AdvisoryURL: cs.GHSAURL, Repository: cs.GHSARepo, Channel: cs.Channel, Report: cs.ReportGHSA, ForkURL: cs.ForkURL, ReporterGitHub: cs.ReporterGitHub,
		PublicSummary: cs.PublicSummary, PublicDescription: cs.PublicDescription, RoomPlatform: disclosure.RoomPlatform(cs.CaseRoom)}
	var err error
	if c.Embargo, err = s.Embargo(ctx, cs.ID); err != nil {
		return nil, err
	}
	ds, err := s.DeadlinesOf(ctx, cs.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		c.Deadlines = append(c.Deadlines, d.Domain())
	}
	if c.NeedToKnow, err = s.NeedToKnow(ctx, cs.ID); err != nil {
		return nil, err
	}
	return c, nil
}
