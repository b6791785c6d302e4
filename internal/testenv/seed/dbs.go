package seed

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/enarx/secbot/store"
)

// DB is a database the 100k benchmarks run on, each a sub-benchmark of
// its own name.
type DB struct {
	Name string
	Open func(b *testing.B) *store.Store
}

// DBs are a SQLite file and a PostgreSQL database at the URL postgres
// gives (pgtest.Start: a throwaway cluster of the benchmark's own;
// pgtest.Shared: a fresh database of the test binary's cluster), each
// store closed when its benchmark ends.
func DBs(postgres func(testing.TB) string) []DB {
	return []DB{
		{"sqlite", func(b *testing.B) *store.Store {
			st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "secbot.db"), zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			return st
		}},
		{"postgres", func(b *testing.B) *store.Store {
			st, err := store.OpenPostgres(context.Background(), postgres(b), zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() })
			return st
		}},
	}
}
