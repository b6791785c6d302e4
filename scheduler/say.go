package scheduler

import (
	"context"
	"time"

	"github.com/enarx/secbot/store"
	"github.com/enarx/secbot/templates"
)

// Say renders data and records it in the outbox as a message: the one way
// secbot queues a text for a person. msg says where it goes and how it is
// threaded; urgent messages (the answer a reporter waits on) go first.
func Say(ctx context.Context, st *store.Store, tmpl *templates.Set, lane string, msg store.SendEffect, data templates.Data, now time.Time, urgent bool) error {
	md, err := tmpl.RenderData(data)
	if err != nil {
		return err
	}
	msg.Markdown = md
	if urgent {
		_, err = st.EnqueueUrgent(ctx, lane, store.KindSend, msg, now)
	} else {
		_, err = st.Enqueue(ctx, lane, store.KindSend, msg, now)
	}
	return err
}
