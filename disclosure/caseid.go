package disclosure

import (
	"fmt"
	"strconv"
	"strings"
)

// CaseID names a report: SR-YYYY-NNNN, numbered per year.
type CaseID struct{ Year, Seq int }

// String formats the ID, e.g. SR-2026-0007.
func (c CaseID) String() string { return fmt.Sprintf("SR-%04d-%04d", c.Year, c.Seq) }

// IsZero reports whether c is the zero ID (no case).
func (c CaseID) IsZero() bool { return c == CaseID{} }

// MarshalText formats the ID as String does, so that it reads the same in
// JSON and config as in messages; the zero ID is empty.
func (c CaseID) MarshalText() ([]byte, error) {
	if c.IsZero() {
		return []byte{}, nil
	}
	return []byte(c.String()), nil
}

// UnmarshalText parses an ID as ParseCaseID does; empty is the zero ID.
func (c *CaseID) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*c = CaseID{}
		return nil
	}
	id, err := ParseCaseID(string(text))
	if err != nil {
		return err
	}
	*c = id
	return nil
}

// ParseCaseID parses an ID like SR-2026-0007 (the prefix in any case).
func ParseCaseID(s string) (CaseID, error) {
	bad := func(why string) (CaseID, error) {
		return CaseID{}, fmt.Errorf("%q is not a case ID (like SR-2026-0007): %s", s, why)
	}
	parts := strings.Split(s, "-")
	if len(parts) != 3 || !strings.EqualFold(parts[0], "SR") {
		return bad("it must be SR-YEAR-NUMBER")
	}
	if len(parts[1]) != 4 || !allDigits(parts[1]) {
		return bad("the year must have four digits")
	}
	if len(parts[2]) < 4 || len(parts[2]) > 9 || !allDigits(parts[2]) {
		return bad("the number must have four to nine digits")
	}
	year, _ := strconv.Atoi(parts[1])
	seq, _ := strconv.Atoi(parts[2])
	if year < 2000 {
		return bad("the year is before 2000")
	}
	if seq == 0 {
		return bad("numbers start at 1")
	}
	if len(parts[2]) > 4 && parts[2][0] == '0' {
		return bad("the number has extra leading zeros")
	}
	return CaseID{Year: year, Seq: seq}, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
