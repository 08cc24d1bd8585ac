//go:build unix

package escrow

import (
	"errors"
	"os"
	"syscall"
)

// openNoFollow makes the open itself refuse a symlink, closing the window
// between the Lstat check and the open.
const openNoFollow = syscall.O_NOFOLLOW

func isSymlinkRefusal(err error) bool { return errors.Is(err, syscall.ELOOP) }

// syncDir makes a new file's directory entry durable: without it a crash
// right after the first record can lose the whole file. A variable so a
// test can see it called.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
