package persistence_test

import (
	"testing"

	"github.com/fsmd-io/fsmd/internal/persistence"
)

func TestDurationBucket(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want int64 }{
		{-5, 0}, {0, 0}, {99, 99}, {100, 100}, {109, 100}, {999, 990}, {1234, 1200},
		{14_999, 14_000}, {3_600_000, 3_600_000}, {3_659_999, 3_600_000}, {1 << 62, 4_600_000_000_000_000_000},
	} {
		if got := persistence.DurationBucket(tt.in); got != tt.want {
			t.Errorf("DurationBucket(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
