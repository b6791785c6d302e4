package store

import (
	"bytes"
	"context"
	"testing"
)

// The installation's secret is made once and kept: every start reads the
// same, and another database has another.
func TestTheInstallationSecretIsMadeOnceAndKept(t *testing.T) {
	eachDB(t, func(t *testing.T, db dialect) {
		ctx := context.Background()
		s, where := openTest(t, db)
		first, err := s.InstallationSecret(ctx)
		if err != nil || len(first) != 32 {
			t.Fatalf("%x, %v", first, err)
		}
		_ = s.Close()
		again, err := reopen(ctx, db, where)
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		if second, err := again.InstallationSecret(ctx); err != nil || !bytes.Equal(first, second) {
			t.Errorf("after a restart %x (%v), want %x", second, err, first)
		}
		other, _ := openTest(t, db)
		if third, err := other.InstallationSecret(ctx); err != nil || bytes.Equal(first, third) {
			t.Errorf("another database's secret %x (%v) is this one's", third, err)
		}
	})
}
