package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/server"
)

const secret = "s3cr3t-client-secret"

// tokenServer issues a new token per request, valid for expiresIn seconds,
// to the client "mdmctl" with the secret above.
func tokenServer(t *testing.T, expiresIn int) (*httptest.Server, *atomic.Int32) {
	var issued atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Form.Get("client_id") != "mdmctl" || r.Form.Get("client_secret") != secret {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"Client authentication failed"}`)
			return
		}
		n := issued.Add(1)
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":%d,"scope":"%s"}`, n, expiresIn, r.Form.Get("scope"))
	}))
	t.Cleanup(srv.Close)
	return srv, &issued
}

func TestTokenIsCachedForItsLifetime(t *testing.T) {
	srv, issued := tokenServer(t, 3600)
	s := New(Client{TokenURL: srv.URL + "/token", ID: "mdmctl", Secret: secret, Scopes: []string{"https://graph.microsoft.com/.default"}}, srv.Client())
	for range 3 {
		tok, err := s.Token(context.Background())
		if err != nil || tok != "tok-1" {
			t.Fatalf("token %q, %v; want tok-1 every time", tok, err)
		}
	}
	s.Invalidate()
	if tok, err := s.Token(context.Background()); err != nil || tok != "tok-2" {
		t.Fatalf("after Invalidate: token %q, %v; want a fresh tok-2", tok, err)
	}
	if n := issued.Load(); n != 2 {
		t.Fatalf("%d tokens issued, want 2", n)
	}
}

func TestExpiringTokenIsRenewed(t *testing.T) {
	// A token valid for less than oauth2's safety margin counts as expired.
	srv, issued := tokenServer(t, 1)
	s := New(Client{TokenURL: srv.URL, ID: "mdmctl", Secret: secret}, srv.Client())
	a, _ := s.Token(context.Background())
	b, err := s.Token(context.Background())
	if err != nil || a == b || issued.Load() != 2 {
		t.Fatalf("tokens %q then %q (%v), %d issued: want a new one each time", a, b, err, issued.Load())
	}
}

func TestRejectedClientIsUnauthorized(t *testing.T) {
	srv, _ := tokenServer(t, 3600)
	s := New(Client{TokenURL: srv.URL, ID: "mdmctl", Secret: "wrong-" + secret}, srv.Client())
	_, err := s.Token(context.Background())
	if !errors.Is(err, server.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if msg := err.Error(); strings.Contains(msg, secret) || !strings.Contains(msg, "invalid_client") || !strings.Contains(msg, srv.URL) {
		t.Fatalf("error %q: want the server and its reason, never the secret", msg)
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	srv, _ := tokenServer(t, 3600)
	url := srv.URL
	srv.Close()
	_, err := New(Client{TokenURL: url, ID: "mdmctl", Secret: secret}, http.DefaultClient).Token(context.Background())
	var ue *server.UnavailableError
	if !errors.As(err, &ue) || strings.Contains(err.Error(), secret) {
		t.Fatalf("err = %v, want UnavailableError without the secret", err)
	}
}
