package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
)

// PostgresIsEmpty reports whether the PostgreSQL database at url has no
// table at all (in its current schema): copy-db writes only into such a
// database.
func PostgresIsEmpty(ctx context.Context, url string) (bool, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return false, err
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n)
	return n == 0, err
}

// CopyInto copies every row of every table of s (a SQLite store) into
// dst (a PostgreSQL store whose schema is made: secbot's migrations and
// mautrix's, at the same versions), in one transaction on each side: s is
// read under its write lock (a running bot waits), dst commits all or
// nothing. Version tables are compared, not copied. Afterwards every
// identity or serial column's sequence is set past the copied IDs. It
// returns the rows copied per table.
func (s *Store) CopyInto(ctx context.Context, dst *Store) (map[string]int, error) {
	if s.Postgres() || !dst.Postgres() {
		return nil, errors.New("copy goes from SQLite to PostgreSQL")
	}
	counts := map[string]int{}
	err := s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		return dst.Tx(ctx, func(ctx context.Context) error {
			clear(counts)
			return s.copyInto(ctx, dst, counts)
		})
	})
	return counts, err
}

func (s *Store) copyInto(ctx context.Context, dst *Store, counts map[string]int) error {
	from, err := s.Tables(ctx)
	if err != nil {
		return err
	}
	to, err := dst.Tables(ctx)
	if err != nil {
		return err
	}
	order, err := dst.tablesInReferenceOrder(ctx, to)
	if err != nil {
		return err
	}
	for _, table := range from {
		if !slices.Contains(to, table) {
			return fmt.Errorf("table %s has no counterpart in the target (is it the same version of secbot?)", table)
		}
	}
	for _, table := range order {
		if !slices.Contains(from, table) {
			continue
		}
		if strings.HasSuffix(table, "_version") {
			if err := sameRows(ctx, s.db, dst.db, table); err != nil {
				return err
			}
			continue
		}
		n, err := copyTable(ctx, s.db, dst.db, table)
		if err != nil {
			return fmt.Errorf("copy %s: %w", table, err)
		}
		counts[table] = n
	}
	return dst.resetSequences(ctx)
}

// tablesInReferenceOrder sorts tables so that a table comes after those
// its foreign keys reference.
func (s *Store) tablesInReferenceOrder(ctx context.Context, tables []string) ([]string, error) {
	refs := map[string][]string{}
	err := pairs[string, string](s.db.Query(ctx, `
		SELECT DISTINCT tc.table_name, ccu.table_name FROM information_schema.table_constraints tc
		JOIN information_schema.constraint_column_usage ccu ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema
		WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = current_schema()`)).
		Iter(func(ref pair[string, string]) (bool, error) {
			if from, to := ref.kv(); from != to {
				refs[from] = append(refs[from], to)
			}
			return true, nil
		})
	if err != nil {
		return nil, err
	}
	var order []string
	done := map[string]bool{}
	var visit func(t string, depth int) error
	visit = func(t string, depth int) error {
		if done[t] {
			return nil
		}
		if depth > len(tables) {
			return fmt.Errorf("foreign keys of %s make a cycle", t)
		}
		for _, r := range refs[t] {
			if err := visit(r, depth+1); err != nil {
				return err
			}
		}
		done[t] = true
		order = append(order, t)
		return nil
	}
	for _, t := range tables {
		if err := visit(t, 0); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// columnTypes are a PostgreSQL table's columns and their data types.
func columnTypes(ctx context.Context, db *dbutil.Database, table string) (map[string]string, error) {
	return pairMap[string, string](db.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`, table))
}

func copyTable(ctx context.Context, from, to *dbutil.Database, table string) (int, error) {
	types, err := columnTypes(ctx, to, table)
	if err != nil {
		return 0, err
	}
	rows, err := from.Query(ctx, `SELECT * FROM `+quote(table))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	names := make([]string, len(cols))
	marks := make([]string, len(cols))
	for i, c := range cols {
		if _, ok := types[c]; !ok {
			return 0, fmt.Errorf("column %s has no counterpart in the target", c)
		}
		names[i] = quote(c)
		marks[i] = "$" + strconv.Itoa(i+1)
	}
	insert := fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s)`, quote(table), strings.Join(names, ", "), strings.Join(marks, ", "))
	n := 0
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		args := make([]any, len(cols))
		for i, v := range vals {
			if args[i], err = convert(v, types[cols[i]]); err != nil {
				return n, fmt.Errorf("column %s: %w", cols[i], err)
			}
		}
		if _, err := to.Exec(ctx, insert, args...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// convert turns a value read from SQLite (int64, float64, string, []byte,
// bool, time.Time or nil) into one for a PostgreSQL column of type typ.
func convert(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case "boolean":
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		case string:
			return strconv.ParseBool(x)
		}
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case "text", "character varying", "character", "json", "jsonb":
		switch x := v.(type) {
		case string:
			return x, nil
		case []byte:
			return string(x), nil
		case int64, float64:
			return fmt.Sprint(x), nil
		}
	case "bigint", "integer", "smallint":
		switch x := v.(type) {
		case int64:
			return x, nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case float64:
			return int64(x), nil
		case string:
			return strconv.ParseInt(x, 10, 64)
		}
	case "timestamp without time zone", "timestamp with time zone":
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case int64:
			return time.Unix(x, 0).UTC(), nil
		}
	default:
		return v, nil
	}
	return nil, fmt.Errorf("cannot store a %T in a %s column", v, typ)
}

// sameRows checks that a version table says the same on both sides.
func sameRows(ctx context.Context, from, to *dbutil.Database, table string) error {
	read := func(db *dbutil.Database) (string, error) {
		var version, compat int
		err := db.QueryRow(ctx, `SELECT version, compat FROM `+quote(table)).Scan(&version, &compat)
		return fmt.Sprintf("v%d (compatible with v%d)", version, compat), err
	}
	a, err := read(from)
	if err != nil {
		return fmt.Errorf("read %s: %w", table, err)
	}
	b, err := read(to)
	if err != nil {
		return fmt.Errorf("read %s of the target: %w", table, err)
	}
	if a != b {
		return fmt.Errorf("%s: the source is at %s, the target at %s", table, a, b)
	}
	return nil
}

// resetSequences sets each identity or serial column's sequence past the
// largest ID in its table, so the next row gets a new one.
func (s *Store) resetSequences(ctx context.Context) error {
	cols, err := pairs[string, string](s.db.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')`)).AsList()
	if err != nil {
		return err
	}
	for _, c := range cols {
		table, name := c.kv()
		if _, err := s.db.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX(%s) FROM %s), 0) + 1, false)`, quote(name), quote(table)), quote(table), name); err != nil {
			return fmt.Errorf("set the sequence of %s.%s: %w", table, name, err)
		}
	}
	return nil
}
