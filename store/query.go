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
