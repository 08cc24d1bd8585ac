package lock

import (
	"errors"
	"fmt"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/dispatch"
)

// latePINs keeps, while a run waits, the PINs the server publishes after
// their locks returned (Session.PINs): in the escrow first, then on the
// device's line, which --show-pins alone shows.
type latePINs struct {
	mu sync.Mutex
	// keep writes the escrow; nil once the wait is over (the escrow closes,
	// and every line is out).
	keep   func(commandUUID, id, pin string) error
	join   *dispatch.Join
	warn   func(string)
	server string
}

var errWaitOver = errors.New("the run no longer waits: the PIN stays on the server")

// take is the session's keep.
func (l *latePINs) take(commandUUID, id, pin string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keep == nil {
		return errWaitOver
	}
	if err := l.keep(commandUUID, id, pin); err != nil {
		l.warn(fmt.Sprintf("%s: escrowing the PIN %s published after the lock failed (%v): read it from the server", id, l.server, err))
		return err
	}
	l.join.PIN(commandUUID, id, pin)
	return nil
}

func (l *latePINs) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keep = nil
}
