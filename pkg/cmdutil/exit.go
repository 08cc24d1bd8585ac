// Package cmdutil holds what every mdmctl command shares: typed errors and
// the single mapping from errors to documented exit codes.
package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// Exit codes; stable, documented in the README and `mdmctl help exit-codes`.
const (
	ExitOK          = 0   // every device queued (and pushed unless --no-push); with --wait, every device Acknowledged
	ExitFailure     = 1   // nothing queued, or another error
	ExitUsage       = 2   // usage error or invalid input (or nothing known by that name); nothing was sent
	ExitPartial     = 3   // some devices failed, or were queued without a push
	ExitAuth        = 4   // the server rejected the credentials
	ExitUnavailable = 5   // server unreachable, timed out, or 5xx without an answer; some device unknown (may be queued)
	ExitRefused     = 6   // refused by the Apple silicon safety guard; nothing was sent
	ExitDeviceError = 7   // --wait: a device answered Error or CommandFormatError
	ExitNoAnswer    = 8   // --wait: the wait ended with devices that never answered
	ExitInterrupted = 130 // interrupted (Ctrl-C)
)

// UsageError is bad input: a flag, argument, file or environment value.
// Its message names the input; nothing was sent. Hint, when set, is a
// suggestion printed on a line of its own.
type UsageError struct {
	Err  error
	Hint string
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// NotFoundError is a lookup of something mdmctl has no record of (`mdmctl
// pin` for a device the escrow holds no PIN for). Its message names what
// was looked up, and where. It exits 2, as an unknown context does: the
// input names nothing known.
type NotFoundError struct{ Err error }

func (e *NotFoundError) Error() string { return e.Err.Error() }
func (e *NotFoundError) Unwrap() error { return e.Err }

// CancelError is the user declining a confirmation, or interrupting it
// with Ctrl-C; nothing was sent.
type CancelError struct{ Interrupted bool }

func (e *CancelError) Error() string {
	if e.Interrupted {
		return "interrupted: nothing was sent"
	}
	return "aborted: nothing was sent"
}

// ExitError carries an exit code decided from results that were already
// printed; main prints nothing more for it.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return "exit " + strconv.Itoa(e.Code) }

// ExitCode maps any error returned by a command to its exit code. It is the
// only place that does.
func ExitCode(err error) int {
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
		return ExitOK
	case errors.As(err, &exitErr):
		return exitErr.Code
	case errors.Is(err, context.Canceled), errors.As(err, &cancelErr) && cancelErr.Interrupted:
		return ExitInterrupted
	case errors.As(err, &usageErr), errors.As(err, &notFound):
		return ExitUsage
	case errors.Is(err, server.ErrUnauthorized):
		return ExitAuth
	case errors.As(err, &unavail), errors.Is(err, context.DeadlineExceeded):
		return ExitUnavailable
	case errors.As(err, &protocolEr):
		return ExitFailure
	}
	return ExitFailure
}

// IsSilent reports whether main should print nothing for err: the command
// already reported everything.
func IsSilent(err error) bool {
	var exitErr *ExitError
	return errors.As(err, &exitErr)
}

// HintOf returns the hint of a usage error, "" for any other error.
func HintOf(err error) string {
	var usageErr *UsageError
	if errors.As(err, &usageErr) {
		return usageErr.Hint
	}
	return ""
}

// PathErr shortens an *os.PathError to its cause: the caller's message
// already names the file.
func PathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
