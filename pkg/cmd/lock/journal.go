package lock

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/journal"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// runJournal is the run's journal and what the run needs to say about it.
type runJournal struct {
	w    *journal.Writer
	salt string
	kind string
	// checks memoizes the PIN check of each PIN the run gives: it is slow
	// on purpose.
	mu     sync.Mutex
	checks map[string]string
	// left counts the devices a resume would send again.
	left int
}

// journalPath is --journal, or a new file under $XDG_STATE_HOME/mdmctl/runs.
func (opts *Options) journalPath() (string, error) {
	if opts.Journal != "" {
		return opts.Journal, nil
	}
	state, err := config.StateHome(opts.Getenv)
	if err != nil {
		return "", exitcode.Usagef("no place for the run journal (%v): give --journal FILE", err)
	}
	return journal.DefaultPath(state, opts.Now(), strconv.Itoa(os.Getpid())), nil
}

// startJournal creates the run's journal and records its plan: every
// command, and the devices settled before sending (invalid, refused).
func (r *runner) startJournal(settings config.Settings, cmds []dispatch.Command, settled []report.Device) error {
	opts := r.opts
	path, err := opts.journalPath()
	if err != nil {
		return err
	}
	salt, err := journal.NewSalt()
	if err != nil {
		return err
	}
	h := journal.Header{Time: opts.Now().UTC(), Server: settings.Server, Kind: settings.Kind, Context: settings.Context,
		Lock: journal.Lock{Message: opts.Message, Phone: opts.Phone, NetworkTether: opts.NetworkTether}, NoPush: opts.NoPush, PINSalt: salt}
	if opts.PINGenerate {
		h.Lock.PIN = journal.PINGenerated
	}
	if r.escrows() {
		// A resume escrows there too: the PINs it resends, and those the
		// server makes.
		if h.PINEscrow, err = filepath.Abs(opts.PINEscrow); err != nil {
			return err
		}
	}
	w, err := journal.Create(path, h)
	if err != nil {
		return &exitcode.UsageError{Err: fmt.Errorf("%v (--journal FILE picks another place)", err)}
	}
	r.journal = &runJournal{w: w, salt: salt, kind: settings.Kind, checks: map[string]string{}}
	planned := make([]journal.Command, len(cmds))
	for i, c := range cmds {
		if planned[i], err = r.journal.command(c); err != nil {
			return err
		}
	}
	outcomes := make([]journal.Outcome, len(settled))
	for i, d := range settled {
		outcomes[i] = journal.Outcome{ID: d.ID, Outcome: d.Outcome, Error: d.Error}
	}
	return w.Plan(planned, outcomes)
}

// plan adds commands planned after the first requests went out (the locks
// decided on a preflight's answers).
func (j *runJournal) plan(cmds []dispatch.Command) error {
	planned := make([]journal.Command, len(cmds))
	for i, c := range cmds {
		var err error
		if planned[i], err = j.command(c); err != nil {
			return err
		}
	}
	return j.w.Plan(planned, nil)
}

// settle reports a device decided without a request of its own (refused
// on its preflight answer), noted in the journal when the run keeps one.
func (r *runner) settle(d report.Device) {
	if j := r.journal; j != nil {
		j.w.Outcome(journal.Outcome{ID: d.ID, Outcome: d.Outcome, Error: d.Error})
	}
	r.emit(d)
}

// command is c as the journal keeps it: its lock values without the PIN.
func (j *runJournal) command(c dispatch.Command) (journal.Command, error) {
	payload, err := c.Plist()
	if err != nil {
		return journal.Command{}, err
	}
	jc := journal.Command{UUID: c.UUID, IDs: make([]string, len(c.Targets)),
		Lock:   journal.Lock{Message: c.Lock.Message, Phone: c.Lock.PhoneNumber, NetworkTether: c.Lock.RequestRequiresNetworkTether},
		Digest: journal.Digest(apple.RedactPIN(payload))}
	for i, t := range c.Targets {
		jc.IDs[i] = t.ID
	}
	switch {
	case len(c.Targets) > 0 && c.Targets[0].PINGenerated:
		jc.Lock.PIN = journal.PINGenerated
	case c.Lock.PIN != "":
		check, err := j.pinCheck(c.Lock.PIN)
		if err != nil {
			return jc, err
		}
		jc.Lock.PIN, jc.Lock.PINCheck = journal.PINGiven, check
	}
	return jc, nil
}

func (j *runJournal) pinCheck(pin string) (string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if c, ok := j.checks[pin]; ok {
		return c, nil
	}
	c, err := journal.PINCheck(j.salt, pin)
	if err == nil {
		j.checks[pin] = c
	}
	return c, err
}

// beforeSend marks c as going out, synced, after the hook before it (the
// PIN escrow) succeeded.
func (j *runJournal) beforeSend(then func(dispatch.Command) error) func(dispatch.Command) error {
	return func(c dispatch.Command) error {
		if then != nil {
			if err := then(c); err != nil {
				return err
			}
		}
		return j.w.Sending(c.UUID, func() (journal.Command, error) { return j.command(c) })
	}
}

// outcomes notes each queue outcome in the journal before passing it on.
func (j *runJournal) outcomes(emit dispatch.Emit) dispatch.Emit {
	return func(d report.Device) {
		j.w.Outcome(journal.Outcome{ID: d.ID, CommandUUID: d.CommandUUID, Outcome: d.Outcome, Error: d.Error, NotReached: d.NotReached})
		if resumable(d, j.kind) {
			j.left++
		}
		emit(d)
	}
}

// resumable reports whether a resume would send d's command again.
func resumable(d report.Device, kind string) bool {
	switch d.Outcome {
	case report.NotSent:
		return true
	case report.Failed:
		return d.NotReached
	case report.Unknown:
		return resendsUnknown(kind)
	}
	return false
}

// resendsUnknown is true for the kinds whose server answers a second
// request for a CommandUUID it holds with "already exists": there a
// resent command that had landed is recognized, never queued twice. A
// journal naming no kind was written for the default one.
func resendsUnknown(kind string) bool {
	if kind == "" {
		kind = server.DefaultKind()
	}
	d, _ := server.Lookup(kind)
	return d.RecognizesResend
}

// close closes the journal and names the resume command when devices are
// left to send again; a journal that could not be written is said to be so.
func (j *runJournal) close(r *runner) {
	err := j.w.Close()
	io := r.opts.IO
	switch {
	case err != nil:
		r.warn(err.Error() + ": the journal may not cover the run's last requests")
	case j.left > 0:
		fmt.Fprintf(io.ErrOut, "to resume: mdmctl lock --resume %s\n", shellQuote(j.w.Path()))
	}
}

// shellQuote quotes a path for a copy-and-paste command line when it needs it.
func shellQuote(s string) string {
	for _, c := range s {
		if !(c == '/' || c == '.' || c == '-' || c == '_' || c == '+' || c == ':' || c == ',' ||
			(c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}
