package store

import (
	"context"
	"database/sql"
	"errors"

	"go.mau.fi/util/dbutil"
)

// The store's row types implement dbutil.DataStruct and are read through
// the Store's QueryHelpers (see queries); rows of one or two plain columns
// go through the helpers below. All of them run on s.db, so they take the
// transaction of a context that Tx handed out, like s.db.Exec does.

// valueQuery is a QueryHelper for a row type read by value.
func valueQuery[T dbutil.DataStruct[T]](db *dbutil.Database) *dbutil.QueryHelper[T] {
	return dbutil.MakeQueryHelperSimple(db, func() (zero T) { return zero })
}

// found turns QueryOne's nil for a missing row into ErrNotFound.
func found[T any](v *T, err error) (*T, error) {
	if err == nil && v == nil {
		return nil, ErrNotFound
	}
	return v, err
}

// scalar reads the one column of the first row query returns; ok is false
// (and err nil) if it returns no row.
func scalar[T any](ctx context.Context, db *dbutil.Database, query string, args ...any) (val T, ok bool, err error) {
	err = db.QueryRow(ctx, query, args...).Scan(&val)
	if errors.Is(err, sql.ErrNoRows) {
		return val, false, nil
	}
	return val, err == nil, err
}

// column reads the rows of a one-column query (a call of db.Query).
func column[T any](rows dbutil.Rows, err error) ([]T, error) {
	return dbutil.NewRowIterWithError(rows, dbutil.ScanSingleColumn[T], err).AsList()
}

// pair is a row of two columns.
type pair[K, V any] struct {
	Key   K
	Value V
}

func scanPair[K, V any](row dbutil.Scannable) (p pair[K, V], err error) {
	err = row.Scan(&p.Key, &p.Value)
	return p, err
}

func (p pair[K, V]) kv() (K, V) { return p.Key, p.Value }

// pairs iterates over the rows of a two-column query (a call of db.Query).
func pairs[K, V any](rows dbutil.Rows, err error) dbutil.RowIter[pair[K, V]] {
	return dbutil.NewRowIterWithError(rows, scanPair[K, V], err)
}

// pairMap reads a two-column query (a call of db.Query) into a map from
// the first column to the second.
func pairMap[K comparable, V any](rows dbutil.Rows, err error) (map[K]V, error) {
	return dbutil.RowIterAsMap(pairs[K, V](rows, err), pair[K, V].kv)
}
