// Package server defines what mdmctl needs from an MDM server, whatever its
// kind: take one command for a set of enrollment IDs and say, per ID, what
// became of it. Adapters live in the sub-packages.
package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// Outcome is what became of a command for one device.
type Outcome string

// Outcomes a server adapter can report.
const (
	// Queued: the server holds the command for the device and woke it (or
	// was told not to push).
	Queued Outcome = "queued"
	// QueuedNotPushed: the command is in the queue but the push failed; the
	// device gets it at its next check-in.
	QueuedNotPushed Outcome = "queued-not-pushed"
	// Failed: the command was not queued for the device.
	Failed Outcome = "failed"
	// Answered: the server delivered the command and returned the device's
	// own response in the same exchange (the raw kind).
	Answered Outcome = "answered"
	// Unknown: the server answered, but not about this device in a way
	// mdmctl can read; the command may be queued for it.
	Unknown Outcome = "unknown"
)

// Request is one command for one or more devices. It carries the
// command's values, not its encoding: kinds that take Apple's plist encode
// it with Plist, kinds with a lock API of their own read Lock.
type Request struct {
	CommandUUID string
	// RequestType is DeviceLock (also when empty) or DeviceInformation.
	RequestType string
	// Lock holds DeviceLock's values.
	Lock apple.DeviceLock
	IDs  []string
	// NoPush asks to queue without waking the device; it reaches only
	// kinds with Capabilities.SkipPush (the run refuses it for the others).
	NoPush bool
	// MayHaveLanded says an earlier run's attempt of this very command
	// (same CommandUUID and bytes) may have reached the server, so an
	// "already exists" answer means it is queued (a resumed run).
	MayHaveLanded bool
}

// IsInformation reports whether req asks DeviceInformation (a preflight)
// rather than DeviceLock.
func (req Request) IsInformation() bool {
	return req.RequestType == apple.RequestTypeDeviceInformation
}

// Plist encodes the command as Apple's property list under its
// CommandUUID; the encoding is deterministic, so a resent command is
// byte-identical to the first.
func (req Request) Plist() ([]byte, error) {
	if req.IsInformation() {
		return apple.InformationPayload(req.CommandUUID)
	}
	return req.Lock.Payload(req.CommandUUID)
}

// DeviceResult is the server's word on one device.
type DeviceResult struct {
	ID      string
	Outcome Outcome
	// Error is the server's reason for Failed or QueuedNotPushed.
	Error string
	// PushID is the APNs ID of the push, when the server reports it.
	PushID string
	// Response is the device's answer when the server relays it synchronously.
	Response *apple.Response
	// Reference is the server's own name for the command it queued for
	// this device, when that is not the CommandUUID (an action or command
	// ID of a vendor API), for looking it up in the server's console.
	Reference string
	// PIN is the unlock PIN the server made for the device, when it makes
	// its own: a secret, escrowed before it is shown or logged anywhere.
	PIN string
	// PINNote, when the server makes the device's PIN but has not returned
	// it (PIN empty), says where the PIN is meanwhile; the device's line
	// shows it until the session's watcher hands the PIN over (Session.PINs).
	PINNote string
}

// Result is the server's answer to a Request: a DeviceResult per device it
// speaks of. Readers match them by ID: a device it leaves out is reported
// unknown, never dropped, and one it names twice counts once.
type Result struct {
	Devices []DeviceResult
}

// Server is an MDM server that can queue a command.
type Server interface {
	// Enqueue sends req. A non-nil error means the server gave no per-device
	// answer (unreachable, authentication, unparseable reply); MayBeQueued
	// and NotReached tell what that leaves. ctx ending stops retries and
	// waits; an attempt in flight runs on to its reply, within ctx's deadline.
	Enqueue(ctx context.Context, req Request) (*Result, error)
}

// ErrRefusedRedirect marks a redirect the client would not follow: to
// another host, or one too many. It is an answer, not an outage: never retried.
var ErrRefusedRedirect = errors.New("redirect refused")

// ErrUnauthorized marks a rejected API key or missing permission (HTTP 401/403).
var ErrUnauthorized = errors.New("authentication failed")

// HTTPError is an HTTP reply the adapter could not read as an answer.
type HTTPError struct {
	Server string // scheme://host of the server, never with credentials
	Status int
	Body   string // a short excerpt
}

func (e *HTTPError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%s answered HTTP %d", e.Server, e.Status)
	}
	return fmt.Sprintf("%s answered HTTP %d: %s", e.Server, e.Status, e.Body)
}

// Unwrap lets errors.Is(err, ErrUnauthorized) find 401 and 403.
func (e *HTTPError) Unwrap() error {
	if e.Status == 401 || e.Status == 403 {
		return ErrUnauthorized
	}
	return nil
}

// UnavailableError means the server could not be reached, timed out, or
// failed with a 5xx that carried no per-device answer.
type UnavailableError struct {
	Server   string
	Elapsed  time.Duration
	Attempts int
	Err      error
}

func (e *UnavailableError) Error() string {
	name := e.Server
	if name == "" {
		name = "the server"
	}
	when := ""
	switch {
	case e.Attempts > 1:
		when = fmt.Sprintf(" after %d attempts in %s", e.Attempts, roundDuration(e.Elapsed))
	case e.Elapsed > 0:
		when = " after " + roundDuration(e.Elapsed)
	}
	return fmt.Sprintf("%s unavailable%s: %v", name, when, e.Err)
}

func roundDuration(d time.Duration) string {
	if d < time.Millisecond {
		return "<1ms"
	}
	return d.Round(time.Millisecond).String()
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// ProtocolError means the server answered, but not in a shape its API
// documents (malformed JSON, wrong content type, oversized body).
type ProtocolError struct {
	Server  string
	Problem string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("%s: %s", e.Server, e.Problem)
}

// MaybeQueuedError wraps why a request got no per-device answer when an
// attempt of it may have reached the server: the command may be queued.
// Its message is Err's.
type MaybeQueuedError struct{ Err error }

func (e *MaybeQueuedError) Error() string { return e.Err.Error() }
func (e *MaybeQueuedError) Unwrap() error { return e.Err }

// MayBeQueued reports whether err, from Enqueue, leaves the command
// possibly queued: a new CommandUUID could then queue it a second time.
func MayBeQueued(err error) bool {
	var m *MaybeQueuedError
	return errors.As(err, &m)
}

// NotReached reports whether err, from Enqueue, proves that no attempt
// reached the server's queue: refused before connecting, or turned away
// with 429 or 503 every time.
func NotReached(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u) && !MayBeQueued(err)
}

// NotEnrolledError is a server refusing a whole request because at least
// one of its IDs is not enrolled, without saying which: nothing was queued
// and the CommandUUID left no trace (NanoMDM on PostgreSQL or MySQL).
type NotEnrolledError struct {
	Server string
	// Detail is the server's own words.
	Detail string
}

func (e *NotEnrolledError) Error() string {
	return fmt.Sprintf("%s refused the whole request: an ID in it is not enrolled on this server (%s); nothing was queued", e.Server, e.Detail)
}
