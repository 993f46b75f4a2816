package persistence

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/lib/pq"
)

// TestNeverSent: only a failure to connect says a request never reached the database; a
// connection broken once made leaves what it carried uncertain.
func TestNeverSent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"dial refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"refused, wrapped", fmt.Errorf("persistence: advance: %w", syscall.ECONNREFUSED), true},
		{"cannot connect now", &pq.Error{Code: "57P03"}, true},
		{"read reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, false},
		{"write broken", &net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}, false},
		{"EOF mid-answer", io.ErrUnexpectedEOF, false},
		{"admin shutdown", &pq.Error{Code: "57P01"}, false},
		{"another error", errors.New("x"), false},
	}
	for _, tt := range tests {
		if got := NeverSent(translate(tt.err)); got != tt.want {
			t.Errorf("%s: NeverSent %v, want %v", tt.name, got, tt.want)
		}
	}
}
