package disclosure

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Span is a duration as the policy states it: a fixed length ("48h",
// "3 days") or a number of working days ("5 working days"), which depends
// on the calendar it is counted in.
type Span struct {
	Fixed       time.Duration
	WorkingDays int
}

// IsZero reports whether the span is empty.
func (s Span) IsZero() bool { return s.Fixed == 0 && s.WorkingDays == 0 }

// String formats the span so that ParseSpan reads it back.
func (s Span) String() string {
	switch {
	case s.WorkingDays == 1:
		return "1 working day"
	case s.WorkingDays > 0:
		return fmt.Sprintf("%d working days", s.WorkingDays)
	case s.Fixed != 0 && s.Fixed%(24*time.Hour) == 0:
		if n := s.Fixed / (24 * time.Hour); n == 1 {
			return "1 day"
		} else {
			return fmt.Sprintf("%d days", n)
		}
	}
	return s.Fixed.String()
}

// maxSpanDays bounds spans to something a policy could mean (about 27 years).
const maxSpanDays = 10000

// ParseSpan reads Go duration syntax ("48h", "90s", "1h30m"), "N days" or
// "N working days" (singular too, any case and spacing).
func ParseSpan(s string) (Span, error) {
	fields := strings.Fields(strings.ToLower(s))
	bad := func(why string) (Span, error) {
		return Span{}, fmt.Errorf("%q is not a duration (like 48h, 3 days or 5 working days): %s", s, why)
	}
	switch {
	case len(fields) == 0:
		return bad("it is empty")
	case len(fields) == 1:
		d, err := time.ParseDuration(fields[0])
		if err != nil {
			var numErr *strconv.NumError
			if errors.As(err, &numErr) {
				return bad("it is out of range")
			}
			return bad("unknown unit or format")
		}
		if d < 0 {
			return bad("it is negative")
		}
		if d > maxSpanDays*24*time.Hour {
			return bad("it is longer than any policy needs")
		}
		return Span{Fixed: d}, nil
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil {
		return bad("the number of days must be a whole number")
	}
	if n < 0 {
		return bad("it is negative")
	}
	if n > maxSpanDays {
		return bad("it is longer than any policy needs")
	}
	unit := strings.Join(fields[1:], " ")
	switch unit {
	case "day", "days":
		return Span{Fixed: time.Duration(n) * 24 * time.Hour}, nil
	case "working day", "working days", "workday", "workdays", "business day", "business days":
		return Span{WorkingDays: n}, nil
	}
	return bad("the unit must be days or working days")
}
