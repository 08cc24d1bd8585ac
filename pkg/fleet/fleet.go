// Package fleet sends DeviceLock to a set of devices through a server: it
// applies the safety guard per device, groups devices that can share one
// command into batches, sends batches concurrently, and reports every device
// exactly once.
package fleet

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
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
	Facts      *apple.Device
	Lock       *apple.DeviceLock
	// PINGenerated marks a PIN mdmctl made up: it must be escrowed first.
	PINGenerated bool
	// Assessment is the guard's verdict, set by Assess.
	Assessment *apple.Assessment
}

// Source is "name:line" for file input, "" for the command line.
func (t *Target) Source() string {
	if t.Line == 0 {
		return ""
	}
	name := t.SourceName
	if name == "-" {
		name = "stdin"
	}
	return name + ":" + strconv.Itoa(t.Line)
}

// Assess applies the guard to every target, once per distinct pair of
// facts and values.
func Assess(targets []*Target) {
	type key struct {
		facts *apple.Device
		lock  *apple.DeviceLock
	}
	memo := map[key]*apple.Assessment{}
	for _, t := range targets {
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

// Command is one command plist and the devices it goes to.
type Command struct {
	// RequestType is the command's; empty means DeviceLock.
	RequestType string
	UUID        string
	Lock        apple.DeviceLock
	Payload     []byte
	Targets     []*Target
}

// Limits bound what one request may carry.
type Limits struct {
	// MaxIDs per request; 1 for servers that take one device per request.
	MaxIDs int
	// MaxIDBytes bounds the joined, escaped IDs of one request so the URL
	// stays within what proxies in front of NanoMDM accept.
	MaxIDBytes int
}

// DefaultLimits keep a NanoMDM enqueue URL under 8 KB, the common proxy
// default (nginx's large_client_header_buffers).
var DefaultLimits = Limits{MaxIDs: 1000, MaxIDBytes: 7000}

// BodyLimits are for servers that take the IDs in a JSON body (Fleet): no
// URL to keep short, so only the count per request is bounded.
var BodyLimits = Limits{MaxIDs: 1000, MaxIDBytes: 1 << 20}

// PerDevice is for servers whose API takes one device per request.
var PerDevice = Limits{MaxIDs: 1, MaxIDBytes: 1 << 20}

// Plan groups the targets the guard lets through into commands: targets
// with equal lock values share a command up to the limits. fixedUUID, when
// set, must be the only command.
func Plan(targets []*Target, limits Limits, newUUID func() string, fixedUUID string) ([]Command, error) {
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
		payload, err := cmds[i].Lock.Payload(cmds[i].UUID)
		if err != nil {
			return nil, err
		}
		cmds[i].Payload = payload
	}
	return cmds, nil
}

// Options control Send.
type Options struct {
	NoPush      bool
	Concurrency int
	// BeforeSend runs before a command's request goes out (PIN escrow); an
	// error keeps the command from being sent.
	BeforeSend func(Command) error
	// Flush, when set, runs after the devices of each command have been
	// emitted, so output leaves in one write per request, not per device.
	Flush func()
}

// Emit receives each device's report; Send serializes the calls.
type Emit func(report.Device)

// Send sends every command, at most opts.Concurrency at a time, and emits
// one report per target. When stop is cancelled no new request starts and
// the remaining devices are reported not-sent; requests already in flight
// run under reqCtx (which carries the timeout) and are reported. It returns
// the first error that kept a whole request from an answer, so the caller
// can tell an authentication failure from an unreachable server.
func Send(stop, reqCtx context.Context, srv server.Server, cmds []Command, opts Options, emit Emit) error {
	var (
		mu       sync.Mutex
		firstErr error
	)
	safeEmit := func(d report.Device) {
		mu.Lock()
		defer mu.Unlock()
		emit(d)
	}
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
				if err := sendOne(stop, reqCtx, srv, c, opts, safeEmit); err != nil {
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
		case <-stop.Done():
			for _, rest := range cmds[i:] {
				reportAll(rest, report.NotSent, "interrupted before sending", safeEmit)
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

func sendOne(stop, reqCtx context.Context, srv server.Server, c Command, opts Options, emit Emit) error {
	if stop.Err() != nil {
		reportAll(c, report.NotSent, "interrupted before sending", emit)
		return nil
	}
	if opts.BeforeSend != nil {
		if err := opts.BeforeSend(c); err != nil {
			reportAll(c, report.NotSent, err.Error(), emit)
			return err
		}
	}
	ids := make([]string, len(c.Targets))
	for i, t := range c.Targets {
		ids[i] = t.ID
	}
	res, err := srv.Enqueue(reqCtx, server.Request{
		CommandUUID: c.UUID,
		RequestType: c.requestType(),
		Payload:     c.Payload,
		IDs:         ids,
		NoPush:      opts.NoPush,
	})
	if err != nil {
		reportAll(c, report.Failed, err.Error(), emit)
		return err
	}
	for i, t := range c.Targets {
		d := res.Devices[i]
		rd := report.Device{
			ID:          t.ID,
			Source:      t.Source(),
			Outcome:     outcome(d),
			CommandUUID: c.UUID,
			Error:       d.Error,
			Response:    d.Response,
		}
		if t.PINGenerated {
			// The printer drops it unless the user asked to see PINs.
			rd.PIN = t.Lock.PIN
		}
		emit(rd)
	}
	return nil
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

func reportAll(c Command, o report.Outcome, why string, emit Emit) {
	for _, t := range c.Targets {
		emit(report.Device{ID: t.ID, Source: t.Source(), Outcome: o, CommandUUID: c.UUID, Error: why})
	}
}
