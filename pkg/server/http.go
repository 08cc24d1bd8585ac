package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Origin is scheme://host[:port] of u: what messages name, never a path
// that could carry IDs nor userinfo that could carry credentials.
func Origin(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// Exchange sends req and reads at most limit bytes of the reply. Transport
// failures, timeouts and truncated bodies become *UnavailableError; an
// oversized body a *ProtocolError.
func Exchange(c *http.Client, req *http.Request, limit int64) (*http.Response, []byte, error) {
	origin := Origin(req.URL)
	start := time.Now()
	resp, err := c.Do(req)
	if errors.Is(err, ErrRefusedRedirect) {
		return nil, nil, &ProtocolError{Server: origin, Problem: transportCause(err).Error()}
	}
	if problem, ok := tlsProblem(err); ok {
		// The server answered with a certificate we do not trust: sending
		// again cannot help, and the server is not "unavailable".
		return nil, nil, &ProtocolError{Server: origin, Problem: problem}
	}
	if err != nil {
		return nil, nil, &UnavailableError{Server: origin, Elapsed: time.Since(start), Err: transportCause(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, &UnavailableError{Server: origin, Elapsed: time.Since(start),
			Err: fmt.Errorf("reading HTTP %d reply: %w", resp.StatusCode, transportCause(err))}
	}
	if int64(len(body)) > limit {
		return nil, nil, &ProtocolError{Server: origin, Problem: fmt.Sprintf("HTTP %d reply is larger than %d bytes", resp.StatusCode, limit)}
	}
	return resp, body, nil
}

// transportCause strips url.Error's wrapping, which repeats the whole URL
// (with every target ID) in front of the real cause.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(err, context.DeadlineExceeded) || ue.Timeout() {
			return fmt.Errorf("timed out: %w", context.DeadlineExceeded)
		}
		return ue.Err
	}
	return err
}

// Excerpt shortens a reply body for an error message.
func Excerpt(body []byte) string {
	s := strings.TrimSpace(string(body))
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// JoinPath appends an already escaped path to base, keeping any prefix
// such as NanoHUB's /api/v1/nanomdm.
func JoinPath(base *url.URL, escapedPath string) (*url.URL, error) {
	return url.Parse(strings.TrimRight(base.String(), "/") + escapedPath)
}

// CheckStatus classifies a reply status the adapter did not expect: 401 and
// 403 are credentials, 429 and 5xx an unavailable server, the rest a plain
// HTTP error with an excerpt of the body.
func CheckStatus(origin string, status int, body []byte, ok ...int) error {
	for _, s := range ok {
		if status == s {
			return nil
		}
	}
	switch {
	case status == 401 || status == 403:
		return &HTTPError{Server: origin, Status: status, Body: "check the API key"}
	case status == 429 || status >= 500:
		return &UnavailableError{Server: origin, Err: fmt.Errorf("HTTP %d: %s", status, Excerpt(body))}
	}
	return &HTTPError{Server: origin, Status: status, Body: Excerpt(body)}
}

// tlsProblem recognizes a TLS failure no retry can fix: a certificate the
// client rejected, or a server that does not speak TLS on that port.
func tlsProblem(err error) (string, bool) {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	var header tls.RecordHeaderError
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid):
		return "TLS certificate not trusted: " + transportCause(err).Error() + " (a private CA goes in --ca-file)", true
	case errors.Is(err, http.ErrSchemeMismatch):
		return "the server gave an HTTP response to an HTTPS request: it speaks plain HTTP on that port (check the URL's scheme and port)", true
	case errors.As(err, &header):
		return "the server does not speak TLS on that port (check the URL's scheme and port)", true
	}
	return "", false
}

// FirstLine is s up to its first line break: a server's message on one line.
func FirstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}
