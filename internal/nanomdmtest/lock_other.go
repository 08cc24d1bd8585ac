//go:build !unix

package nanomdmtest

// lockFile is a no-op here: the install still renames a finished binary
// into place, so parallel installs waste time but never race.
func lockFile(string) (func(), error) { return func() {}, nil }
