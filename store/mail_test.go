package store

import (
	"context"
	"errors"
	"testing"

	"github.com/enarx/secbot/disclosure"
)

func TestAnEmailCasesThreadKeepsItsRootAndLastMessage(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		s, _ := openTest(t, db)
		ctx := context.Background()
		c, err := s.CreateCase(ctx, disclosure.EmailPerson("r@example.test"), "email", "", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.MailThread(ctx, c.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a case without mail has a thread: %v", err)
		}
		for _, id := range []string{"first@x", "second@x", "third@x"} {
			if err := s.SetMailThread(ctx, c.ID, id, t0); err != nil {
				t.Fatal(err)
			}
		}
		root, last, err := s.MailThread(ctx, c.ID)
		if err != nil || root != "first@x" || last != "third@x" {
			t.Errorf("thread %q … %q (%v), want first@x … third@x", root, last, err)
		}
	})
}
