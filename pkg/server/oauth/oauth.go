// Package oauth gets and caches the OAuth 2.0 client-credentials tokens
// that vendor APIs (Jamf Pro, Microsoft Graph) take: one token per session,
// fetched when first needed, reused for its lifetime and fetched again
// shortly before it expires or when the API rejects it. The token and the
// client secret never appear in errors.
package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// Source hands out a valid access token for a client.
type Source struct {
	cfg  clientcredentials.Config
	http *http.Client
	// server names the token endpoint's origin in errors.
	server string

	mu  sync.Mutex
	src oauth2.TokenSource
}

// Client identifies the OAuth client: its token endpoint, ID, secret and
// the scopes it asks for (Graph wants ".default"; Jamf none).
type Client struct {
	TokenURL string
	ID       string
	Secret   string
	Scopes   []string
	// InHeader sends the ID and secret as HTTP Basic credentials rather
	// than in the form (RFC 6749 §2.3.1 allows both; servers differ).
	InHeader bool
}

// New returns a Source that fetches tokens through hc (the session's client,
// with its TLS settings, timeouts and debug trace).
func New(c Client, hc *http.Client) *Source {
	style := oauth2.AuthStyleInParams
	if c.InHeader {
		style = oauth2.AuthStyleInHeader
	}
	s := &Source{
		cfg: clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: c.TokenURL,
			Scopes: c.Scopes, AuthStyle: style},
		http:   hc,
		server: EndpointOrigin(c.TokenURL),
	}
	s.reset()
	return s
}

func (s *Source) reset() {
	// The token source's own cache renews a token shortly before expiry.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.http)
	s.src = s.cfg.TokenSource(ctx)
}

// Token returns the cached token or fetches a new one. A client the token
// endpoint rejects is server.ErrUnauthorized; an endpoint that cannot be
// reached is a server.UnavailableError.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	src := s.src
	s.mu.Unlock()
	type got struct {
		tok *oauth2.Token
		err error
	}
	// oauth2's sources take no context per call: honour ctx here.
	ch := make(chan got, 1)
	go func() {
		t, err := src.Token()
		ch <- got{t, err}
	}()
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case g := <-ch:
		if g.err != nil {
			return "", s.explain(g.err)
		}
		return g.tok.AccessToken, nil
	}
}

// Invalidate drops the cached token, after the API rejected it (revoked,
// or expired early): the next Token fetches a fresh one.
func (s *Source) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
}

// explain turns oauth2's error into one that names the endpoint and the
// server's reason, without the request (which carries the secret).
func (s *Source) explain(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		reason := re.ErrorCode
		if re.ErrorDescription != "" {
			reason = strings.TrimSpace(reason + ": " + server.FirstLine(re.ErrorDescription))
		}
		if reason == "" {
			reason = "no reason given"
		}
		return Refused(s.server, status, re.ErrorCode, reason, "client's credentials")
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &server.UnavailableError{Server: s.server, Attempts: 1, Err: ue.Err}
	}
	return &server.ProtocolError{Server: s.server, Problem: "token endpoint: " + err.Error()}
}

// Refused is a token endpoint's refusal, HTTP status with the OAuth error
// code and the reason it gave: the credentials (what names them) refused,
// server.ErrUnauthorized; the endpoint unavailable; or no OAuth answer.
func Refused(origin string, status int, code, reason, what string) error {
	switch {
	case status == 400 || status == 401 || status == 403 || code == "invalid_client" || code == "unauthorized_client":
		return fmt.Errorf("%s refused the %s (HTTP %d, %s): %w", origin, what, status, reason, server.ErrUnauthorized)
	case status == 429 || status >= 500:
		return &server.UnavailableError{Server: origin, Attempts: 1, Err: fmt.Errorf("token endpoint answered HTTP %d (%s)", status, reason)}
	}
	return &server.ProtocolError{Server: origin, Problem: fmt.Sprintf("token endpoint answered HTTP %d (%s)", status, reason)}
}

// EndpointOrigin is a token URL's scheme://host, for messages.
func EndpointOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the token endpoint"
	}
	return server.Origin(u)
}
