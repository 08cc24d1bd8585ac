package exitcode

import (
	"errors"
	"fmt"
	"strconv"
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
