package httpclient

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/internal/redact"
	"github.com/mdmctl/mdmctl/pkg/apple"
)

// tracer writes one line per request and reply to w, with the
// Authorization header, any userinfo in the URL and any PIN in a body
// redacted.
type tracer struct {
	next http.RoundTripper
	mu   sync.Mutex
	w    io.Writer
}

func (t *tracer) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			body, _ = io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
		}
	}
	auth := ""
	if req.Header.Get("Authorization") != "" {
		auth = " Authorization: REDACTED"
	}
	t.printf("> %s %s%s", req.Method, redact.URL(req.URL.String()), auth)
	switch mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); {
	case len(body) == 0:
	case strings.HasSuffix(mediaType, "xml") || mediaType == "application/x-apple-aspen-mdm":
		t.printf("> body: %s", bytes.Join(bytes.Fields(apple.RedactPIN(body)), []byte(" ")))
	default:
		// Only a plist's PIN can be found and redacted; other bodies (Fleet's
		// JSON carries the plist in base64) are not shown.
		t.printf("> body: %s, not shown", mediaType)
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.printf("< error after %s: %v", time.Since(start).Round(time.Millisecond), err)
		return nil, err
	}
	t.printf("< %s (%s) Content-Type: %s", resp.Status, time.Since(start).Round(time.Millisecond), resp.Header.Get("Content-Type"))
	return resp, nil
}

func (t *tracer) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "debug: "+format+"\n", args...)
}
