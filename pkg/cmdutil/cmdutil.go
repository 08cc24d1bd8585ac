// Package cmdutil holds what every mdmctl command shares: the factory of
// its dependencies and small helpers. Errors and their exit codes are
// pkg/exitcode's; opening a server is pkg/connect's.
package cmdutil

import (
	"errors"
	"io/fs"
)

// PathErr shortens an *os.PathError to its cause: the caller's message
// already names the file.
func PathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
