package lock

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// runHistory records the run's locks in the lock history: each device's
// row before its request goes out, then what became of it. A write that
// fails is warned about once and never stops or delays a lock: the run's
// output and journal still say what happened.
type runHistory struct {
	store *history.Store
	// base holds what every lock of the run shares.
	base history.Lock
	now  func() time.Time
	warn func(string)

	mu      sync.Mutex
	pending []history.Update
	failed  bool
}

// openHistory opens the lock history before anything is sent: a run that
// cannot record its locks, or read the earlier ones, does not start.
func (r *runner) openHistory(settings config.Settings) error {
	opts := r.opts
	store, err := opts.OpenHistory(settings)
	if err != nil {
		return err
	}
	base := history.Lock{Server: connect.HistoryServer(settings), Context: settings.Context, Kind: settings.Kind, User: opts.OSUser()}
	if r.escrows() {
		if base.PINEscrow, err = filepath.Abs(opts.PINEscrow); err != nil {
			base.PINEscrow = opts.PINEscrow
		}
	}
	r.history = &runHistory{store: store, base: base, now: opts.Now, warn: r.warn}
	return nil
}

// startHistory opens the history and holds back from send the Macs a
// second PIN must not reach; it returns them, reported refused.
func (r *runner) startHistory(ctx context.Context, settings config.Settings, send *[]*dispatch.Target) ([]report.Device, error) {
	if err := r.openHistory(settings); err != nil {
		return nil, err
	}
	kept, held, err := r.holdBack(ctx, *send)
	if err != nil {
		return nil, err
	}
	*send = kept
	return held, nil
}

// closeHistory writes what is left and closes the history, once.
func (r *runner) closeHistory() {
	if r.history != nil {
		r.history.close()
		r.history = nil
	}
}

func describeHeld(held []report.Device) string {
	if len(held) == 1 {
		return held[0].ID
	}
	return plural(len(held), "Mac")
}

// fail warns about a history write that failed, once per run.
func (h *runHistory) fail(err error) {
	h.mu.Lock()
	first := !h.failed
	h.failed = true
	h.mu.Unlock()
	if first {
		h.warn(err.Error() + ": the lock history may miss this run's locks (the output and the run journal have them)")
	}
}

// beforeSend records c's devices as sending, then runs the hook after it.
func (h *runHistory) beforeSend(then func(dispatch.Command) error) func(dispatch.Command) error {
	return func(c dispatch.Command) error {
		locks := make([]history.Lock, len(c.Targets))
		at := h.now().UTC()
		for i, t := range c.Targets {
			l := h.base
			l.Time, l.Device, l.Serial, l.CommandUUID, l.Platform = at, t.ID, t.Serial, c.UUID, string(t.KnownPlatform())
			switch {
			case t.PINGenerated:
				l.PIN = history.PINGenerated
			case t.ServerPIN:
				l.PIN = history.PINServer
			case t.Lock.PIN != "":
				l.PIN, l.PINEscrow = history.PINGiven, ""
			default:
				l.PINEscrow = ""
			}
			locks[i] = l
		}
		// Recorded once the escrow and the journal took the command, just
		// before its request goes out.
		if then != nil {
			if err := then(c); err != nil {
				return err
			}
		}
		if err := h.store.Sending(context.Background(), locks); err != nil {
			h.fail(err)
		}
		return nil
	}
}

// outcome keeps d's outcome for the next write.
func (h *runHistory) outcome(d report.Device) {
	if d.CommandUUID == "" || d.EarlierRun || d.Outcome == report.Planned {
		return // never sent by this run
	}
	h.mu.Lock()
	h.pending = append(h.pending, history.Update{Server: h.base.Server, CommandUUID: d.CommandUUID, Device: d.ID,
		Outcome: d.Outcome, Error: d.Error, Reference: d.Reference, Response: d.Response, At: h.now().UTC()})
	h.mu.Unlock()
}

// outcomes records each queue outcome before passing it on.
func (h *runHistory) outcomes(emit dispatch.Emit) dispatch.Emit {
	return func(d report.Device) {
		h.outcome(d)
		emit(d)
	}
}

// write records the kept outcomes, in one transaction.
func (h *runHistory) write() {
	h.mu.Lock()
	updates := h.pending
	h.pending = nil
	h.mu.Unlock()
	if err := h.store.Record(context.Background(), updates); err != nil {
		h.fail(err)
	}
}

func (h *runHistory) close() {
	h.write()
	_ = h.store.Close()
}

// holdBack keeps a second lock with another PIN from a Mac whose earlier
// lock still holds (sending, queued, unanswered or acknowledged): with two
// PINs in play, nobody knows which one unlocks it. --pin-generate gives
// such a Mac the earlier PIN again, from the earlier lock's escrow; the
// same PIN given again is fine; --relock sends anyway. A device known not
// to be a Mac, or whose earlier lock carried no PIN (an iPhone's never
// does), is not held back.
func (r *runner) holdBack(ctx context.Context, targets []*dispatch.Target) (send []*dispatch.Target, held []report.Device, err error) {
	h := r.history
	ids := make([]string, 0, len(targets))
	for _, t := range targets {
		if t.Lock.PIN != "" || t.ServerPIN {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) == 0 {
		return targets, nil, nil
	}
	earlier, err := h.store.Latest(ctx, h.base.Server, ids)
	if err != nil {
		return nil, nil, err
	}
	escrowed := map[string]map[[2]string]string{} // escrow path -> its PINs
	pinOf := func(l history.Lock) (string, bool) {
		if (l.PIN != history.PINGenerated && l.PIN != history.PINServer) || l.PINEscrow == "" {
			return "", false
		}
		pins, ok := escrowed[l.PINEscrow]
		if !ok {
			pins, _ = escrow.PINs(l.PINEscrow) // unreadable: the PIN is unknown, and the Mac held back
			escrowed[l.PINEscrow] = pins
		}
		pin, ok := pins[[2]string{l.CommandUUID, l.Device}]
		return pin, ok
	}
	reused := 0
	for _, t := range targets {
		l, ok := earlier[t.ID]
		if !ok || !l.Holds() || l.PIN == history.PINNone || (t.Lock.PIN == "" && !t.ServerPIN) {
			send = append(send, t)
			continue
		}
		// Known now, or when the earlier lock was sent, not to be a Mac.
		if p := t.KnownPlatform(); (p != apple.PlatformUnknown && p != apple.PlatformMacOS) ||
			(l.Platform != "" && l.Platform != string(apple.PlatformMacOS)) {
			send = append(send, t)
			continue
		}
		pin, known := pinOf(l)
		switch {
		case r.opts.Relock:
			r.warnLater(fmt.Sprintf("%s: relocking (--relock) over the earlier lock, %s", t.ID, describeEarlier(l)))
		case known && pin == t.Lock.PIN && !t.ServerPIN:
		case known && t.PINGenerated:
			lock := *t.Lock
			lock.PIN = pin
			t.Lock = &lock
			reused++
		default:
			held = append(held, report.Device{ID: t.ID, Source: t.Source(), Outcome: report.Refused, Error: heldReason(l, known, t.ServerPIN)})
			continue
		}
		send = append(send, t)
	}
	if reused > 0 {
		r.warnLater(fmt.Sprintf("reusing the PIN of the earlier lock that still holds for %s (--relock sends a new one)", plural(reused, "Mac")))
	}
	return send, held, nil
}

// describeEarlier names an earlier lock: its command, time, outcome and
// where its PIN is.
func describeEarlier(l history.Lock) string {
	s := fmt.Sprintf("command %s (sent %s, %s", l.CommandUUID, l.Time.UTC().Format(time.RFC3339), l.Outcome)
	switch l.PIN {
	case history.PINGenerated:
		s += ", PIN escrowed in " + l.PINEscrow
	case history.PINServer:
		s += ", PIN made by the server, escrowed in " + l.PINEscrow
	case history.PINGiven:
		s += ", PIN given by hand, not kept by mdmctl"
	}
	return s + ")"
}

// heldReason says why a Mac is held back and what to do; pinKnown tells
// whether the earlier PIN can be read back from its escrow, serverPIN that
// the server would make the new lock's PIN (so no PIN can be reused).
func heldReason(l history.Lock, pinKnown, serverPIN bool) string {
	next := "--pin-generate reuses the earlier PIN, --relock sends anyway"
	switch {
	case serverPIN:
		next = "the server makes a new PIN for every lock; --relock sends anyway"
	case pinKnown:
	case l.PIN == history.PINGenerated || l.PIN == history.PINServer:
		next = "its escrow holds no readable PIN for it; --relock sends anyway"
	default:
		next = "mdmctl cannot check a PIN given by hand against it; --relock sends anyway"
	}
	return fmt.Sprintf("an earlier lock still holds, %s: a second PIN could leave the Mac unusable; %s", describeEarlier(l), next)
}
