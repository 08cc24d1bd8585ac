// Package connect holds an opened server as commands use it: its session
// with the driver of its kind, and the feed of device answers (the
// session's own, or mdmctl's webhook receiver).
package connect

import (
	"time"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// Options tune the connection to the run.
type Options struct {
	Concurrency    int
	Timeout        time.Duration
	ConnectTimeout time.Duration
	// Retries is how often a request that got no answer is sent again.
	Retries int
	Debug   bool
}

// Connection is an opened server: its session, and the driver of its kind,
// which says what it can do (limits, capabilities).
type Connection struct {
	*server.Session
	server.Driver
}
