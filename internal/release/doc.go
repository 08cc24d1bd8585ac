// Package release checks what `goreleaser release --snapshot` left in dist/:
// the universal macOS binary and the checksums. Its tests read the folder
// named by MDMCTL_RELEASE_DIST, which .ci/run sets after the snapshot.
package release
