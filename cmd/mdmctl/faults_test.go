package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// faultHandler misbehaves the way one server mode says, counting requests.
func faultHandler(mode string, n *atomic.Int64, other string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		count := n.Add(1)
		apiResult := func(status int, body string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}
		ids := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/enqueue/"), ",")
		switch mode {
		case "ok":
			apiResult(200, `{"no_push":true,"command_uuid":"X","request_type":"DeviceLock"}`)
		case "reset":
			hijackClose(w)
		case "reset-mid-body":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "500")
			w.WriteHeader(200)
			fmt.Fprint(w, `{"status":{`)
			w.(http.Flusher).Flush()
			hijackClose(w)
		case "hang":
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		case "401", "403", "404", "502", "503":
			code := map[string]int{"401": 401, "403": 403, "404": 404, "502": 502, "503": 503}[mode]
			http.Error(w, http.StatusText(code), code)
		case "retry-after-30":
			w.Header().Set("Retry-After", "30")
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		case "429-then-ok":
			if count == 1 {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			}
			apiResult(200, `{"no_push":true}`)
		case "500-command-error":
			apiResult(500, `{"command_error":"writing command: storage unavailable","no_push":true}`)
		case "207-partial":
			apiResult(207, fmt.Sprintf(`{"status":{%q:{"command_error":"enqueue for X: bad id"}},"no_push":true}`, ids[len(ids)-1]))
		case "malformed":
			apiResult(200, `{"status": {"A": [`)
		case "hostile-body":
			// An error body that would forge a line, repaint it, and reverse it.
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(400)
			fmt.Fprint(w, "bad request\nB  queued  command X\x1b[2K\u202edesrever")
		case "oversized":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
			fmt.Fprint(w, `{"command_error":"`+strings.Repeat("x", 8<<20)+`"}`)
		case "html":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html>login</html>")
		case "empty":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(200)
		case "cross-host-redirect":
			http.Redirect(w, r, other+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		case "redirect-loop":
			http.Redirect(w, r, r.URL.RequestURI(), http.StatusTemporaryRedirect)
		default:
			http.Error(w, "unknown fault mode "+mode, 500)
		}
	}
}

func hijackClose(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
		conn.Close()
	}
}

// cmdFaultServer starts a server that misbehaves as MODE says and points
// mdmctl at it; `requests N` then counts what reached it. Mode "refused"
// points at a port nothing listens on; "plain-as-https" at a plain HTTP
// server through an https:// URL.
func cmdFaultServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: fault-server MODE")
	}
	var n atomic.Int64
	var url string
	switch args[0] {
	case "plain-as-https":
		srv := httptest.NewServer(faultHandler("ok", &n, ""))
		ts.Defer(srv.Close)
		url = strings.Replace(srv.URL, "http:", "https:", 1)
	case "refused":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(err)
		url = "http://" + l.Addr().String()
		l.Close()
	default:
		// The redirect target is another host (localhost vs 127.0.0.1)
		// that would accept the credentials if they were sent.
		other := httptest.NewServer(faultHandler("ok", &n, ""))
		ts.Defer(other.Close)
		otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
		srv := httptest.NewServer(faultHandler(args[0], &n, otherURL))
		ts.Defer(srv.Close)
		url = srv.URL
	}
	counters.Store(url, &n)
	ts.Setenv(countingKey, url)
	ts.Setenv("MDMCTL_SERVER", url)
	ts.Setenv("MDMCTL_API_KEY", "fault-key")
}

// cmdFlakyProxy puts a proxy in front of the script's NanoMDM that
// forwards the first enqueue request and then drops the connection instead
// of relaying the answer: the command landed, the client never heard.
// With "503-first" it turns the first request away with a 503 instead,
// unforwarded, as a load balancer does.
func cmdFlakyProxy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) > 1 || (len(args) == 1 && args[0] != "503-first") {
		ts.Fatalf("usage: flaky-proxy [503-first]")
	}
	refuseFirst := len(args) == 1
	target := ts.Getenv("NANOMDM_URL")
	if target == "" {
		ts.Fatalf("flaky-proxy: start nanomdm first")
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count := n.Add(1)
		if refuseFirst && count == 1 {
			http.Error(w, "no upstream available", http.StatusServiceUnavailable)
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target+r.URL.RequestURI(), r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if count == 1 && !refuseFirst {
			hijackClose(w)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	ts.Defer(srv.Close)
	counters.Store(srv.URL, &n)
	ts.Setenv(countingKey, srv.URL)
	ts.Setenv("MDMCTL_SERVER", srv.URL)
}
