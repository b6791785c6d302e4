package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	pgtest "github.com/enarx/secbot/internal/testenv/postgres"
)

// tcpProxy forwards connections to a server; black-holed, it drops every
// byte both ways and keeps the connections open (as a cut network does);
// cut closes them (the server's dead-peer detection giving up).
type tcpProxy struct {
	l      net.Listener
	target string
	holed  atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{l: l, target: target}
	t.Cleanup(func() { _ = l.Close(); p.cut() })
	go p.serve()
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go p.pipe(u, c)
		go p.pipe(c, u)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.holed.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // closed or reset: the connection is gone either way
		}
	}
}

func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// through returns dbURL with its host replaced by the proxy's.
func (p *tcpProxy) through(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.l.Addr().String()
	return u.String()
}

// The active instance reaches PostgreSQL through a proxy that is then
// black-holed: its self-check fails and it stops by itself within seconds
// (OnLost), well before the server would give up on its connections (TCP
// keepalives, about 11 s in the README's settings; here the proxy closes
// them once a stopped, at the earliest). The standby
// takes over only after that, and once the network is back nothing the old
// instance still tries commits: the rows of the old epoch are those it
// had committed before the new epoch began, and every write it made
// acknowledged is among them.
func TestAPartitionedActiveInstanceStopsBeforeTheStandbyTakesOver(t *testing.T) {
	c, err := pgtest.SharedCluster()
	if err != nil {
		t.Fatal(err)
	}
	direct := c.Database(t)
	proxy := startProxy(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port())))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	aStore, err := DialPostgres(ctx, proxy.through(t, direct), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer aStore.Close()
	lostAt := make(chan time.Time, 1)
	a := aStore.Elector(Election{Instance: "a", OnLost: func(error) { lostAt <- time.Now() }})
	defer a.Close()
	if err := a.Campaign(ctx); err != nil {
		t.Fatal(err)
	}
	if err := aStore.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.TakeOffice(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Watch(ctx) }()

	bStore, err := DialPostgres(ctx, direct, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer bStore.Close()
	b := bStore.Elector(Election{Instance: "b", Poll: 100 * time.Millisecond})
	defer b.Close()
	bWon := make(chan time.Time, 1)
	go func() {
		if err := b.Campaign(ctx); err != nil {
			t.Error(err)
			return
		}
		bWon <- time.Now()
	}()

	// a writes all along: one handled event per transaction.
	var mu sync.Mutex
	acked := map[string]bool{}
	var healed atomic.Bool
	healCh := make(chan struct{})
	var afterHeal, afterHealFenced atomic.Int32
	wrote := make(chan struct{}, 1)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ctx.Err() == nil; i++ {
			id := fmt.Sprintf("$a-%d", i)
			// A write begun once the network is back (one in flight
			// through the partition fails on its own).
			afterHealing := healed.Load()
			wctx, done := context.WithTimeout(ctx, 3*time.Second)
			err := aStore.Tx(wctx, func(ctx context.Context) error {
				_, err := aStore.MarkHandled(ctx, id, t0)
				return err
			})
			done()
			if afterHealing {
				afterHeal.Add(1)
				if errors.Is(err, ErrFenced) {
					afterHealFenced.Add(1)
				}
				if afterHeal.Load() >= 20 {
					return
				}
			}
			if errors.Is(err, ErrFenced) && !afterHealing {
				<-healCh // refused already: try again once the network is back
				continue
			}
			if err == nil {
				mu.Lock()
				acked[id] = true
				mu.Unlock()
				select {
				case wrote <- struct{}{}:
				default:
				}
			}
		}
	}()
	for range 5 {
		<-wrote
	}
	for deadline := time.Now().Add(30 * time.Second); b.Role() != "standby"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("b's role %q, want standby", b.Role())
		}
	}

	holed := time.Now()
	proxy.holed.Store(true)
	const serverGivesUp = 5 * time.Second
	var lost time.Time
	select {
	case lost = <-lostAt:
	case <-time.After(serverGivesUp):
		t.Fatal("the partitioned instance did not stop before the server gave up on it")
	}
	t.Logf("a stopped %v after the partition", lost.Sub(holed).Round(time.Millisecond))
	select {
	case at := <-bWon:
		t.Fatalf("b won %v after the partition, while a's session was alive", at.Sub(holed))
	default:
	}
	// The server's dead-peer detection gives up on a's connections (at the
	// earliest: right after a stopped).
	cutAt := time.Now()
	proxy.cut()
	var won time.Time
	select {
	case won = <-bWon:
	case <-time.After(30 * time.Second):
		t.Fatal("b did not take over once a's sessions were gone")
	}
	if won.Before(cutAt) {
		t.Errorf("b took the lock before a's session ended")
	}
	if err := bStore.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	epoch, err := b.TakeOffice(ctx, time.Now())
	if err != nil || epoch != 2 {
		t.Fatalf("b's office: epoch %d %v", epoch, err)
	}
	t.Logf("b active %v after the partition", time.Since(holed).Round(time.Millisecond))
	atTakeover := handledLike(t, bStore, "$a-%")

	// The network comes back: a, which lost its office, still tries.
	proxy.holed.Store(false)
	healed.Store(true)
	close(healCh)
	select {
	case <-writerDone:
	case <-time.After(60 * time.Second):
		t.Fatal("a's writer did not finish")
	}
	if n, f := afterHeal.Load(), afterHealFenced.Load(); f != n {
		t.Errorf("%d of a's %d writes after the network came back were not refused as fenced", n-f, n)
	}
	// Even an old instance that did not notice (its own flag reset, as a
	// paused process that slept through its checks) is refused by the
	// database, through the network that came back.
	a.guard.fenced.Store(false)
	err = aStore.Tx(ctx, func(ctx context.Context) error {
		_, err := aStore.MarkHandled(ctx, "$a-late", t0)
		return err
	})
	if !errors.Is(err, ErrFenced) {
		t.Errorf("a's late write through the healed network: %v, want ErrFenced", err)
	}
	after := handledLike(t, bStore, "$a-%")
	if len(after) != len(atTakeover) {
		t.Errorf("a committed %d rows after b's epoch began", len(after)-len(atTakeover))
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range acked {
		if !after[id] {
			t.Errorf("%s was acknowledged to a but is not in the database", id)
		}
	}
	t.Logf("a had %d writes acknowledged; %d rows of its epoch", len(acked), len(after))
}

func handledLike(t *testing.T, s *Store, pattern string) map[string]bool {
	t.Helper()
	rows, err := s.DB.RawDB.Query(`SELECT event_id FROM handled_events WHERE event_id LIKE $1`, pattern)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	return out
}
