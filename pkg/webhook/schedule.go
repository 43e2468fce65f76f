package webhook

import "time"

// DefaultSchedule is when a failing delivery is tried again, counted from its first
// attempt: about 5 s, 30 s, 2 min, 10 min and 1 h after it, then every 6 h until a day
// has passed. A delivery that still fails at the last of these is recorded as failed.
var DefaultSchedule = []time.Duration{
	5 * time.Second,
	30 * time.Second,
	2 * time.Minute,
	10 * time.Minute,
	time.Hour,
	6 * time.Hour,
	12 * time.Hour,
	18 * time.Hour,
	24 * time.Hour,
}

// NextAttempt returns when to try a delivery again after an attempt failed at now, by
// schedule (offsets from the first attempt, ascending), and false when the schedule is
// used up. It picks the first offset that lies after now rather than counting attempts,
// so a delivery that a long outage held up is not sent again and again to catch up
// with the slots it missed.
func NextAttempt(schedule []time.Duration, first, now time.Time) (time.Time, bool) {
	for _, offset := range schedule {
		if at := first.Add(offset); at.After(now) {
			return at, true
		}
	}
	return time.Time{}, false
}
