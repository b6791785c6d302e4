package store

// The store's row types implement dbutil.DataStruct and are read through
// the Store's QueryHelpers (see queries); rows of one or two plain columns
// go through the helpers below. All of them run on s.db, so they take the
// transaction of a context that Tx handed out, like s.db.Exec does.

// found turns QueryOne's nil for a missing row into ErrNotFound.
func found[T any](v *T, err error) (*T, error) {
	if err == nil && v == nil {
		return nil, ErrNotFound
	}
	return v, err
}
