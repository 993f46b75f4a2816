package ident_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/fsmd-io/fsmd/internal/ident"
)

// TestNew: 26 base32 characters, in the order of their times, different at the same time.
func TestNew(t *testing.T) {
	t.Parallel()
	form := regexp.MustCompile(`^[0-9abcdefghjkmnpqrstvwxyz]{26}$`)
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	a, b, later := ident.New(t0), ident.New(t0), ident.New(t0.Add(time.Millisecond))
	if !form.MatchString(a) || !form.MatchString(later) {
		t.Fatalf("ids %q %q", a, later)
	}
	if a == b || a >= later || b >= later {
		t.Errorf("%q, %q at one time and %q a millisecond later: want distinct, in time order", a, b, later)
	}
}
