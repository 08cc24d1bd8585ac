package intune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// APIVersion is the Graph version mdmctl calls: everything it needs
// (remoteLock, managedDevice's udid, serialNumber and deviceActionResults,
// remoteLockActionResult.unlockPin) is in v1.0.
const APIVersion = "v1.0"

// ManagedDevicesPath is Intune's managed devices collection under the Graph root.
const ManagedDevicesPath = "/" + APIVersion + "/deviceManagement/managedDevices"

// The permissions (application, with admin consent) the kind needs.
const (
	PermissionRead = "DeviceManagementManagedDevices.Read.All"
	PermissionLock = "DeviceManagementManagedDevices.PrivilegedOperations.All"
)

// Tokens hands out Graph access tokens (an oauth.Source).
type Tokens interface {
	Token(ctx context.Context) (string, error)
	Invalidate()
}

// graphError is Graph's error envelope:
// {"error": {"code", "message", "innerError": {"request-id", "date", ...}}}.
type graphError struct {
	Error *struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			RequestID string `json:"request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// parseGraphError reads Graph's error envelope from a reply; ok is false
// when the body is not one (a proxy, a gateway, not Graph).
func parseGraphError(resp *http.Response, body []byte) (string, bool) {
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var e graphError
	if mediaType != "application/json" || json.Unmarshal(body, &e) != nil || e.Error == nil || (e.Error.Code == "" && e.Error.Message == "") {
		return "", false
	}
	s := strings.TrimSpace(e.Error.Code + ": " + server.FirstLine(e.Error.Message))
	s = strings.TrimPrefix(strings.TrimSuffix(s, ":"), ": ")
	if id := e.Error.InnerError.RequestID; id != "" {
		s += " (request-id " + id + ")"
	}
	return server.Excerpt([]byte(s)), true
}

// permissionHint names what a 401 or 403 from Graph asks for.
const permissionHint = "the app registration needs the Microsoft Graph application permissions " +
	PermissionRead + " (inventory, action results) and " + PermissionLock + " (remoteLock), with admin consent, " +
	"and an Intune license in the tenant"

// classify turns a Graph reply mdmctl did not expect into an error: 401 and
// 403 name the permissions, 429 and 5xx are an unavailable server, the
// rest an HTTP error with Graph's code and message.
func (c *Client) classify(resp *http.Response, body []byte) error {
	origin := server.Origin(c.BaseURL)
	text, isGraph := parseGraphError(resp, body)
	if !isGraph {
		text = server.Excerpt(body)
	}
	switch status := resp.StatusCode; {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		if text != "" {
			text += "; "
		}
		return &server.HTTPError{Server: origin, Status: status, Body: text + permissionHint}
	case status == http.StatusTooManyRequests || status >= 500:
		return &server.UnavailableError{Server: origin, Err: fmt.Errorf("HTTP %d: %s", status, text)}
	default:
		return &server.HTTPError{Server: origin, Status: status, Body: text}
	}
}

// url builds a Graph URL from an escaped path and query under BaseURL.
func (c *Client) url(pathAndQuery string) (*url.URL, error) {
	return server.JoinPath(c.BaseURL, pathAndQuery)
}

// sameOrigin accepts a link Graph returned (@odata.nextLink) only on the
// server the token is meant for. Behind a proxy, Graph's links name Graph's
// own host: a link on a known Graph cloud is taken onto the configured
// server, path prefix included; any other host is refused.
func (c *Client) sameOrigin(link string) (*url.URL, error) {
	u, err := url.Parse(link)
	switch {
	case err != nil:
	case strings.EqualFold(server.Origin(u), server.Origin(c.BaseURL)):
		return u, nil
	case u.Scheme == "https" && clouds[strings.ToLower(u.Host)] != "" && strings.HasPrefix(u.EscapedPath(), "/"+APIVersion+"/"):
		path := u.EscapedPath()
		if prefix := strings.TrimRight(c.BaseURL.EscapedPath(), "/"); prefix != "" && strings.HasPrefix(path, prefix+"/") {
			path = strings.TrimPrefix(path, prefix)
		}
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
		return c.url(path)
	}
	return nil, &server.ProtocolError{Server: server.Origin(c.BaseURL), Problem: fmt.Sprintf("Graph's next page link %q is not on this server", server.Excerpt([]byte(link)))}
}

// before, when set, runs before an attempt that follows one which may have
// landed; an error stops the request unsent.
type before func(ctx context.Context) error

// exchange sends one Graph request, with retries as c.Retry says (429's
// Retry-After honoured), a fresh token for each attempt, and one more
// round with a new token after a 401 (a token revoked or expired early:
// Graph acted on nothing). check runs before any attempt that follows one
// which may have reached Graph.
func (c *Client) exchange(ctx context.Context, method string, u *url.URL, limit int64, check before) (*http.Response, []byte, server.Sent, error) {
	var (
		resp *http.Response
		body []byte
		sent server.Sent
		err  error
	)
	for round := 0; round < 2; round++ {
		newReq := func(ctx context.Context, landed bool) (*http.Request, error) {
			if (landed || sent.Landed) && check != nil {
				if err := check(ctx); err != nil {
					return nil, err
				}
			}
			tok, err := c.Tokens.Token(ctx)
			if errors.Is(err, server.ErrUnauthorized) {
				return nil, fmt.Errorf("%w; check the tenant (MDMCTL_TENANT), the application (client) ID (MDMCTL_API_USER) and its client secret (MDMCTL_API_KEY)", err)
			}
			if err != nil {
				return nil, err
			}
			r, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
			if err != nil {
				return nil, err
			}
			r.Header.Set("Accept", "application/json")
			r.Header.Set("Authorization", "Bearer "+tok)
			if method == http.MethodPost {
				// remoteLock takes no body; say so to proxies that want a length.
				r.ContentLength = 0
			}
			return r, nil
		}
		var s server.Sent
		resp, body, s, err = c.Retry.Do(ctx, c.HTTP, newReq, limit)
		sent.Attempts += s.Attempts
		sent.Landed = sent.Landed || s.Landed
		sent.Status = s.Status
		if err != nil || resp.StatusCode != http.StatusUnauthorized || round > 0 {
			break
		}
		c.Tokens.Invalidate()
	}
	if err != nil {
		err = sent.Unanswered(err)
	}
	return resp, body, sent, err
}

// errNotFound is Graph saying it has no such resource (404 in its envelope).
var errNotFound = errors.New("not found")

// get reads a Graph resource into v; errNotFound for a 404 in Graph's
// envelope (a bare 404 is a wrong URL, an error).
func (c *Client) get(ctx context.Context, u *url.URL, limit int64, v any) error {
	resp, body, _, err := c.exchange(ctx, http.MethodGet, u, limit, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode == http.StatusNotFound {
		if _, isGraph := parseGraphError(resp, body); isGraph {
			return errNotFound
		}
	}
	if resp.StatusCode != http.StatusOK {
		return c.classify(resp, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &server.ProtocolError{Server: server.Origin(c.BaseURL), Problem: fmt.Sprintf("HTTP 200 reply is not Graph's JSON: %v", err)}
	}
	return nil
}
