package disclosure

import (
	"fmt"
	"strings"
	"time"
)

// Calendar says which days are working days, in which time zone.
type Calendar struct {
	Location    *time.Location
	WorkingDays [7]bool         // indexed by time.Weekday
	Holidays    map[string]bool // "2006-01-02" in Location
}

var weekdayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday, "mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday, "wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday, "fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// NewCalendar builds a calendar from the config's names: an IANA time zone,
// weekday names ("Mon" or "Monday") and holidays as YYYY-MM-DD.
func NewCalendar(tz string, workingDays []string, holidays []string) (Calendar, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return Calendar{}, fmt.Errorf("unknown time zone %q", tz)
	}
	c := Calendar{Location: loc, Holidays: make(map[string]bool, len(holidays))}
	any := false
	for _, name := range workingDays {
		day, ok := weekdayNames[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return Calendar{}, fmt.Errorf("%q is not a weekday (Mon … Sun)", name)
		}
		c.WorkingDays[day], any = true, true
	}
	if !any {
		return Calendar{}, fmt.Errorf("there must be at least one working day")
	}
	for _, h := range holidays {
		d, err := time.Parse("2006-01-02", h)
		if err != nil {
			return Calendar{}, fmt.Errorf("holiday %q is not a date like 2026-12-25", h)
		}
		c.Holidays[d.Format("2006-01-02")] = true
	}
	return c, nil
}

func (c Calendar) loc() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// IsWorkingDay reports whether t falls on a working day in the calendar.
func (c Calendar) IsWorkingDay(t time.Time) bool {
	t = t.In(c.loc())
	return c.WorkingDays[t.Weekday()] && !c.Holidays[t.Format("2006-01-02")]
}

// Add returns t plus s. A fixed span is wall time. N working days is the
// same local clock time on the N-th following working day (Friday 18:00 +
// 1 working day = Monday 18:00); if t is not on a working day, counting
// starts at the beginning (00:00) of the next one, so a report on Saturday
// with one working day is due Tuesday 00:00 — all of Monday. Days are
// stepped in the calendar's zone, so DST changes do not shift clock times.
func (c Calendar) Add(t time.Time, s Span) time.Time {
	t = t.Add(s.Fixed)
	if s.WorkingDays == 0 {
		return t
	}
	l := t.In(c.loc())
	if !c.IsWorkingDay(l) {
		l = c.nextWorkingDayStart(l)
	}
	for n := 0; n < s.WorkingDays; {
		l = c.addDays(l, 1)
		if c.IsWorkingDay(l) {
			n++
		}
	}
	return l
}

// Sub returns t minus s (reminders before a deadline). Working days count
// backwards the same way Add counts forwards.
func (c Calendar) Sub(t time.Time, s Span) time.Time {
	t = t.Add(-s.Fixed)
	if s.WorkingDays == 0 {
		return t
	}
	l := t.In(c.loc())
	for n := 0; n < s.WorkingDays; {
		l = c.addDays(l, -1)
		if c.IsWorkingDay(l) {
			n++
		}
	}
	return l
}

func (c Calendar) addDays(l time.Time, n int) time.Time {
	return time.Date(l.Year(), l.Month(), l.Day()+n, l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), c.loc())
}

func (c Calendar) nextWorkingDayStart(l time.Time) time.Time {
	d := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, c.loc())
	for i := 0; i < 400; i++ {
		d = c.addDays(d, 1)
		if c.IsWorkingDay(d) {
			return d
		}
	}
	return d
}
