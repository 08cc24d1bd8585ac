// Package exitcode is the one place mdmctl's exit codes are decided: from a
// command's error, or from a lock run's per-device outcomes. Errors carry
// their category (its own usage, not-found, cancel and exit errors; server's
// unavailable, unauthorized and protocol errors).
package exitcode

import (
	"context"
	"errors"

	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// The exit codes; stable, documented in the README and `mdmctl help exit-codes`.
const (
	OK          = 0   // every device queued (and pushed unless --no-push); with --wait, every device Acknowledged
	Failure     = 1   // nothing queued, or another error
	Usage       = 2   // usage error or invalid input (or nothing known by that name); nothing was sent
	Partial     = 3   // some devices failed, or were queued without a push
	Auth        = 4   // the server rejected the credentials
	Unavailable = 5   // server unreachable, timed out, or 5xx without an answer; some device unknown (may be queued)
	Refused     = 6   // refused by the Apple silicon safety guard, or held back from a second PIN; nothing was sent
	DeviceError = 7   // --wait, status: a device answered Error or CommandFormatError
	NoAnswer    = 8   // --wait, status: the wait ended with devices that never answered
	Interrupted = 130 // interrupted (Ctrl-C)
)

// Of maps any error returned by a command to its exit code.
func Of(err error) int {
	var (
		exitErr    *ExitError
		usageErr   *UsageError
		notFound   *NotFoundError
		cancelErr  *CancelError
		unavail    *server.UnavailableError
		protocolEr *server.ProtocolError
	)
	switch {
	case err == nil:
		return OK
	case errors.As(err, &exitErr):
		return exitErr.Code
	case errors.Is(err, context.Canceled), errors.As(err, &cancelErr) && cancelErr.Interrupted:
		return Interrupted
	case errors.As(err, &usageErr), errors.As(err, &notFound):
		return Usage
	case errors.Is(err, server.ErrUnauthorized):
		return Auth
	case errors.As(err, &unavail), errors.Is(err, context.DeadlineExceeded):
		return Unavailable
	case errors.As(err, &protocolEr):
		return Failure
	}
	return Failure
}

// OfRun decides a lock run's exit code from its summary; an interrupted
// run exits 130 whatever its devices did. Device
// answers come with --wait or from the raw kind's exchange. sendErr is the
// first error that kept a request from any answer; when nothing reached a
// device it decides the code (4 for credentials, 5 for an unreachable server).
// A device whose fate is unknown (it may be queued) makes the run exit 5.
func OfRun(s report.Summary, interrupted bool, sendErr error) int {
	if interrupted {
		return Interrupted
	}
	if s[report.NotSent] > 0 && sendErr == nil {
		return Interrupted
	}
	if s[report.Unknown] > 0 {
		// Some device may hold the command without anyone knowing: a
		// script must not read this as "failed, safe to run again".
		return Unavailable
	}
	reached := s[report.Queued] + s[report.QueuedNotPushed] + s[report.Acknowledged] +
		s[report.DeviceError] + s[report.CommandFormatError] + s[report.NoAnswer] + s[report.Planned]
	total := s.Total()
	if reached == 0 {
		switch {
		case sendErr != nil:
			return Of(sendErr)
		case total > 0 && s[report.Refused] == total-s[report.Invalid]:
			return Refused
		}
		return Failure
	}
	if s[report.DeviceError]+s[report.CommandFormatError] > 0 {
		return DeviceError
	}
	if s[report.NoAnswer] > 0 {
		return NoAnswer
	}
	if reached < total || s[report.QueuedNotPushed] > 0 {
		return Partial
	}
	return OK
}
