// Package dispatch sends DeviceLock to a set of devices through a server: it
// applies the safety guard per device, groups devices that can share one
// command into batches, sends batches concurrently, and reports every device
// exactly once.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// Target is one device to lock, with what is known about it and the values
// it gets. Facts and Lock point at values shared by every device the same
// flags describe, so a fleet of 100,000 costs little more than its IDs.
type Target struct {
	ID string
	// SourceName and Line locate the input line ("devices.csv", 7); Line 0
	// means the command line.
	SourceName string
	Line       int
	// Serial is the serial number the target was given by (--serial); the
	// server resolved it to ID.
	Serial string
	Facts  *apple.Device
	// Observed is what other sources say about the device (a server's
	// inventory, the device's own answer); the guard weighs them with
	// Facts and never lets one replace another.
	Observed []apple.Observation
	Lock     *apple.DeviceLock
	// PINGenerated marks a PIN mdmctl made up: it must be escrowed first.
	PINGenerated bool
	// ServerPIN marks a device whose server makes its PIN (the kind's
	// LockPlan): the PIN comes back with the result, to be escrowed.
	ServerPIN bool
	// Assessment is the guard's verdict, set by Assess.
	Assessment *apple.Assessment
}

// MayBeMac is true unless the sources that tell the device's platform all
// say it is not a Mac; a source that tells none does not count, so with
// none that tells, it may be.
func (t *Target) MayBeMac() bool {
	told := false
	for _, d := range t.sources() {
		switch d.KnownPlatform() {
		case apple.PlatformMacOS:
			return true
		case apple.PlatformUnknown:
		default:
			told = true
		}
	}
	return !told
}

// KnownPlatform is the platform every source that names one agrees on
// (--platform, a CSV column, the model, the server's inventory); unknown
// when none does or they disagree.
func (t *Target) KnownPlatform() apple.Platform {
	found := apple.PlatformUnknown
	for _, d := range t.sources() {
		switch p := d.KnownPlatform(); {
		case p == apple.PlatformUnknown:
		case found == apple.PlatformUnknown:
			found = p
		case found != p:
			return apple.PlatformUnknown
		}
	}
	return found
}

func (t *Target) sources() []apple.Device {
	var out []apple.Device
	if t.Facts != nil {
		out = append(out, *t.Facts)
	}
	for _, o := range t.Observed {
		out = append(out, o.Device)
	}
	return out
}

// Source is "name:line" for file input, "serial S" for a target given by
// its serial number, "" for the command line.
func (t *Target) Source() string {
	if t.Line == 0 {
		if t.Serial != "" {
			return "serial " + t.Serial
		}
		return ""
	}
	name := t.SourceName
	if name == "-" {
		name = "stdin"
	}
	return name + ":" + strconv.Itoa(t.Line)
}

// inputSource names where the target's input facts came from.
func (t *Target) inputSource() string {
	if t.Line == 0 {
		return "flags"
	}
	return t.Source()
}

// Assess applies the guard to every target, once per distinct pair of
// input facts and values; a target that other sources describe is judged
// on its own.
func Assess(targets []*Target) {
	type key struct {
		facts *apple.Device
		lock  *apple.DeviceLock
	}
	memo := map[key]*apple.Assessment{}
	for _, t := range targets {
		if len(t.Observed) > 0 {
			obs := append([]apple.Observation{{Source: t.inputSource(), Device: *t.Facts}}, t.Observed...)
			a := apple.AssessObserved(obs, *t.Lock)
			t.Assessment = &a
			continue
		}
		k := key{t.Facts, t.Lock}
		a, ok := memo[k]
		if !ok {
			v := apple.Assess(*t.Facts, *t.Lock)
			a = &v
			memo[k] = a
		}
		t.Assessment = a
	}
}

// Command is one command and the devices it goes to.
type Command struct {
	// RequestType is the command's; empty means DeviceLock.
	RequestType string
	UUID        string
	Lock        apple.DeviceLock
	Targets     []*Target
	// MayHaveLanded marks a resumed command an earlier run's request may
	// already have queued (see server.Request).
	MayHaveLanded bool
}

// Plan groups the targets the guard lets through into commands: targets
// with equal lock values share a command up to the limits. fixedUUID, when
// set, must be the only command.
func Plan(targets []*Target, limits server.Limits, newUUID func() string, fixedUUID string) ([]Command, error) {
	type open struct {
		idx   int // index into cmds
		bytes int
	}
	var cmds []Command
	openByLock := map[apple.DeviceLock]*open{}
	for _, t := range targets {
		idBytes := len(url.PathEscape(t.ID)) + 1
		o := openByLock[*t.Lock]
		if t.PINGenerated || o == nil || len(cmds[o.idx].Targets) >= limits.MaxIDs || o.bytes+idBytes > limits.MaxIDBytes {
			cmds = append(cmds, Command{Lock: *t.Lock})
			o = &open{idx: len(cmds) - 1}
			if !t.PINGenerated {
				openByLock[*t.Lock] = o
			}
		}
		cmds[o.idx].Targets = append(cmds[o.idx].Targets, t)
		o.bytes += idBytes
	}
	if fixedUUID != "" && len(cmds) > 1 {
		return nil, fmt.Errorf("--command-uuid names one command, but these %d devices need %d commands (different values or too many for one request)", len(targets), len(cmds))
	}
	for i := range cmds {
		cmds[i].UUID = fixedUUID
		if cmds[i].UUID == "" {
			cmds[i].UUID = newUUID()
		}
		// Values too long for a plist are refused now, not mid-run.
		if _, err := cmds[i].Plist(); err != nil {
			return nil, err
		}
	}
	return cmds, nil
}

// Options control Send.
type Options struct {
	NoPush      bool
	Concurrency int
	// BeforeSend runs before each request goes out (PIN escrow), for the
	// halves of a split request too; an error keeps it from being sent.
	BeforeSend func(Command) error
	// KeepPIN, when set, keeps a PIN the server made for a device (the
	// escrow) before its report is emitted; an error is reported on the
	// device's line, which then shows no PIN.
	KeepPIN func(c Command, t *Target, pin string) error
	// Flush, when set, runs after the devices of each command have been
	// emitted, so output leaves in one write per request, not per device.
	Flush func()
	// NewUUID gives each half of a split request its fresh CommandUUID. Nil
	// when the run's CommandUUID is fixed (--command-uuid): a request
	// refused for an unenrolled ID is then not split.
	NewUUID func() string
}

// Emit receives each device's report; Send serializes the calls.
type Emit func(report.Device)

// Send sends every command, at most opts.Concurrency at a time, and emits
// one report per target. When ctx ends (the first Ctrl-C) no new request
// or retry starts and the remaining devices are reported not-sent; an
// attempt in flight runs on to its reply. It returns the first error that
// kept a whole request from an answer, so the caller can tell an
// authentication failure from an unreachable server.
func Send(ctx context.Context, srv server.Server, cmds []Command, opts Options, emit Emit) error {
	var (
		mu       sync.Mutex
		firstErr error
	)
	s := &sender{ctx: ctx, srv: srv, opts: opts, emit: func(d report.Device) {
		mu.Lock()
		defer mu.Unlock()
		emit(d)
	}}
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	workers := opts.Concurrency
	if workers < 1 {
		workers = 1
	}
	jobs := make(chan Command)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				if err := s.send(c); err != nil {
					fail(err)
				}
				if opts.Flush != nil {
					opts.Flush()
				}
			}
		}()
	}
	for i, c := range cmds {
		select {
		case <-ctx.Done():
			for _, rest := range cmds[i:] {
				s.reportAll(rest, report.Device{Outcome: report.NotSent, Error: "interrupted before sending"})
			}
			close(jobs)
			wg.Wait()
			return firstErr
		case jobs <- c:
		}
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

// sender sends one run's commands.
type sender struct {
	ctx  context.Context
	srv  server.Server
	opts Options
	emit Emit
}

func (s *sender) send(c Command) error {
	if s.ctx.Err() != nil {
		s.reportAll(c, report.Device{Outcome: report.NotSent, Error: "interrupted before sending"})
		return nil
	}
	if s.opts.BeforeSend != nil {
		if err := s.opts.BeforeSend(c); err != nil {
			s.reportAll(c, report.Device{Outcome: report.NotSent, Error: err.Error()})
			return err
		}
	}
	res, err := s.srv.Enqueue(s.ctx, c.Request(s.opts.NoPush))
	var notEnrolled *server.NotEnrolledError
	switch {
	case errors.As(err, &notEnrolled):
		return s.split(c, notEnrolled)
	case err != nil:
		return s.unanswered(c, err)
	}
	s.report(c, res)
	return nil
}

// unanswered reports the devices of a request that got no per-device
// answer, each as what the failure leaves it: maybe queued (unknown), cut
// by an interrupt before anything could land (not-sent), or failed.
func (s *sender) unanswered(c Command, err error) error {
	interrupted := s.ctx.Err() != nil && errors.Is(err, context.Canceled)
	switch {
	case server.MayBeQueued(err):
		s.reportAll(c, report.Device{Outcome: report.Unknown, Error: "may be queued: an attempt may have reached the server, and no answer came back (" + err.Error() + "); a run with a new CommandUUID could queue it twice"})
	case interrupted:
		s.reportAll(c, report.Device{Outcome: report.NotSent, Error: "interrupted before a retry; no attempt reached the queue (" + err.Error() + ")"})
	default:
		s.reportAll(c, report.Device{Outcome: report.Failed, Error: err.Error(), NotReached: server.NotReached(err)})
	}
	if interrupted {
		return nil // the interrupt, not the server, decides the exit
	}
	return err
}

// split answers a request refused whole because some ID is not enrolled:
// nothing was queued, so each half goes again under a fresh CommandUUID,
// until the unenrolled IDs stand alone and fail by themselves. For k of
// them in a batch of n this costs about 2·k·log2(n) more requests.
func (s *sender) split(c Command, refusal *server.NotEnrolledError) error {
	if len(c.Targets) == 1 {
		s.reportAll(c, report.Device{Outcome: report.Failed, Error: "not enrolled on this server: " + refusal.Detail})
		return nil
	}
	if s.opts.NewUUID == nil {
		s.reportAll(c, report.Device{Outcome: report.Failed, Error: "not queued: " + refusal.Error() +
			"; finding the unenrolled IDs takes requests with new CommandUUIDs, which --command-uuid rules out: drop --command-uuid or those IDs"})
		return nil
	}
	mid := len(c.Targets) / 2
	var firstErr error
	for _, part := range [][]*Target{c.Targets[:mid], c.Targets[mid:]} {
		half := Command{RequestType: c.RequestType, UUID: s.opts.NewUUID(), Lock: c.Lock, Targets: part}
		err := s.send(half)
		if firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// report emits the server's word on each target, matched by ID: a device
// the answer says nothing about is reported unknown, never dropped.
func (s *sender) report(c Command, res *server.Result) {
	byID := make(map[string]server.DeviceResult, len(res.Devices))
	for _, d := range res.Devices {
		if _, twice := byID[d.ID]; !twice {
			byID[d.ID] = d
		}
	}
	for _, t := range c.Targets {
		d, ok := byID[t.ID]
		if !ok {
			d = server.DeviceResult{Outcome: server.Unknown, Error: "may be queued: the server's answer says nothing about this device"}
		}
		rd := report.Device{
			ID:          t.ID,
			Source:      t.Source(),
			Outcome:     outcome(d),
			CommandUUID: c.UUID,
			Error:       d.Error,
			Response:    d.Response,
		}
		switch {
		case t.PINGenerated:
			// The printer drops it unless the user asked to see PINs.
			rd.PIN = t.Lock.PIN
		case d.PIN != "":
			rd.PIN = s.keepPIN(c, t, d.PIN, &rd)
		case d.PINNote != "":
			rd.Error, rd.PINNote = joinReason(rd.Error, d.PINNote), d.PINNote
		}
		rd.Reference = d.Reference
		s.emit(rd)
	}
}

// keepPIN escrows a PIN the server made, before anything shows it, and
// returns it for the report; when it cannot be kept the report says so
// and shows no PIN: the server still holds it.
func (s *sender) keepPIN(c Command, t *Target, pin string, rd *report.Device) string {
	if s.opts.KeepPIN == nil {
		rd.Error = joinReason(rd.Error, "the server made this device's PIN and mdmctl kept no copy: read it from the server")
		return ""
	}
	if err := s.opts.KeepPIN(c, t, pin); err != nil {
		rd.Error = joinReason(rd.Error, "the server made this device's PIN, but escrowing it failed ("+err.Error()+"): read it from the server")
		return ""
	}
	return pin
}

// withLatePIN is d once the PIN its server published after the result is
// kept (Session.PINs): the PIN for its line, which shows it only with
// --show-pins, and no more note saying where else the PIN is.
func withLatePIN(d report.Device, pin string) report.Device {
	if d.PINNote != "" {
		// joinReason put it last: "reason; note", or alone.
		d.Error = strings.TrimSuffix(strings.TrimSuffix(d.Error, d.PINNote), "; ")
	}
	d.PIN, d.PINNote = pin, ""
	return d
}

func joinReason(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// outcome maps the server's word to the report's; a synchronous answer
// (the raw kind) is reported as the device's own status.
func outcome(d server.DeviceResult) report.Outcome {
	if d.Outcome == server.Answered && d.Response != nil {
		return AnswerOutcome(*d.Response)
	}
	return report.Outcome(d.Outcome)
}

// AnswerOutcome is the report outcome for a device's final answer.
func AnswerOutcome(r apple.Response) report.Outcome {
	switch r.Status {
	case apple.StatusAcknowledged:
		return report.Acknowledged
	case apple.StatusCommandFormatError:
		return report.CommandFormatError
	case apple.StatusNotNow:
		return report.NotNow
	case apple.StatusIdle:
		return report.Idle
	}
	return report.DeviceError
}

// reportAll emits d (its outcome and reason) for every target of c.
func (s *sender) reportAll(c Command, d report.Device) {
	for _, t := range c.Targets {
		d.ID, d.Source, d.CommandUUID = t.ID, t.Source(), c.UUID
		s.emit(d)
	}
}
