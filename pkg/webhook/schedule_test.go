package webhook_test

import (
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/webhook"
)

func TestNextAttempt(t *testing.T) {
	t.Parallel()
	first := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		failed time.Duration // when the attempt failed, after the first attempt
		want   time.Duration // when to try again, after the first attempt; 0 for never
	}{
		{"first attempt", 0, 5 * time.Second},
		{"first attempt, slow", 9 * time.Second, 30 * time.Second},
		{"second attempt", 5 * time.Second, 30 * time.Second},
		{"third attempt", 30 * time.Second, 2 * time.Minute},
		{"fourth attempt", 2 * time.Minute, 10 * time.Minute},
		{"fifth attempt", 10 * time.Minute, time.Hour},
		{"sixth attempt", time.Hour, 6 * time.Hour},
		{"after 6 h", 6 * time.Hour, 12 * time.Hour},
		{"after 12 h", 12 * time.Hour, 18 * time.Hour},
		{"after 18 h", 18 * time.Hour, 24 * time.Hour},
		{"after a day", 24 * time.Hour, 0},
		{"held up 3 h", 3 * time.Hour, 6 * time.Hour},
		{"held up 30 h", 30 * time.Hour, 0},
	}
	for _, tt := range tests {
		got, ok := webhook.NextAttempt(webhook.DefaultSchedule, first, first.Add(tt.failed))
		switch {
		case tt.want == 0 && ok:
			t.Errorf("%s: next attempt at +%s, want none", tt.name, got.Sub(first))
		case tt.want != 0 && !ok:
			t.Errorf("%s: no next attempt, want +%s", tt.name, tt.want)
		case tt.want != 0 && !got.Equal(first.Add(tt.want)):
			t.Errorf("%s: next attempt at +%s, want +%s", tt.name, got.Sub(first), tt.want)
		}
	}
}
