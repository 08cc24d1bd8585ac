package httpclient_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/httpclient"
)

// TestTraceRedacts: the debug trace names each exchange but never shows
// the Authorization header, a user or password in the URL, a plist's PIN,
// or a body it cannot redact.
func TestTraceRedacts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	plist, err := apple.DeviceLock{PIN: "482913", Message: "Return to IT"}.Payload("CMD-1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, contentType string
		body              []byte
		want              string
		userinfo          string // written into the request URL
	}{
		{"NanoMDM plist", "application/xml; charset=UTF-8", plist, "<key>PIN</key> <string>REDACTED</string>", ""},
		{"raw exchange plist", "application/x-apple-aspen-mdm", plist, "Return to IT", ""},
		{"Fleet JSON", "application/json", []byte(`{"command":"` + base64.StdEncoding.EncodeToString(plist) + `"}`), "body: application/json, not shown", ""},
		{"URL with userinfo", "application/xml", plist, "> PUT http://REDACTED@127.0.0.1", "urluser:url-secret@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var trace bytes.Buffer
			c, err := httpclient.New(httpclient.Options{Debug: &trace})
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPut, strings.Replace(srv.URL, "//", "//"+tt.userinfo, 1)+"/v1/enqueue/A", bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tt.contentType)
			req.SetBasicAuth("nanomdm", "api-secret")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			out := trace.String()
			for _, secret := range []string{"482913", "api-secret", "urluser", "url-secret", base64.StdEncoding.EncodeToString([]byte("nanomdm:api-secret")), base64.StdEncoding.EncodeToString(plist)[:40]} {
				if strings.Contains(out, secret) {
					t.Fatalf("trace shows %q:\n%s", secret, out)
				}
			}
			if !strings.Contains(out, "Authorization: REDACTED") || !strings.Contains(out, tt.want) || !strings.Contains(out, "< 200 OK") {
				t.Fatalf("trace lacks %q:\n%s", tt.want, out)
			}
		})
	}
}
