// Package redact hides the user and password a URL may carry, wherever
// mdmctl prints a URL: in errors, config listings and the HTTP trace.
package redact

import (
	"net/url"
	"strings"
)

// Placeholder stands in for the userinfo that was removed.
const Placeholder = "REDACTED"

// URL returns raw with any userinfo (user, password or both) replaced by
// REDACTED, keeping the rest as given so the reader still recognizes it.
// raw need not be a valid URL: a string that does not parse as one with a
// host ("nanomdm:KEY@host" reads as scheme and opaque) is redacted up to its
// last '@' before any query or fragment, since a password may hold the
// characters that broke the parse.
func URL(raw string) string {
	start := 0
	if i := strings.Index(raw, "//"); i >= 0 {
		start = i + 2
	}
	end := len(raw)
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		if u.User == nil {
			return raw
		}
		// It parsed, so the authority ends where Go's parser ended it.
		if i := strings.IndexAny(raw[start:], "/?#"); i >= 0 {
			end = start + i
		}
	} else if i := strings.IndexAny(raw[start:], "?#"); i >= 0 {
		end = start + i
	}
	at := strings.LastIndex(raw[start:end], "@")
	if at < 0 {
		return raw
	}
	return raw[:start] + Placeholder + raw[start+at:]
}
