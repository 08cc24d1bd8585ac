//go:build !unix

package escrow

// Windows has no O_NOFOLLOW; the Lstat check in Open stands alone.
const openNoFollow = 0

func isSymlinkRefusal(error) bool { return false }

// syncDir does nothing: Windows cannot sync a directory handle, and NTFS
// journals the directory entry itself.
var syncDir = func(string) error { return nil }
