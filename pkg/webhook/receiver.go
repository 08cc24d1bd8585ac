package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// MaxBody bounds one event. A DeviceLock report is well under a kilobyte;
// the bound only stops a misbehaving sender from exhausting memory.
const MaxBody = 1 << 20

// Receiver is the HTTP endpoint NanoMDM's (or MicroMDM's) -webhook-url
// points at.
type Receiver struct {
	// Collector takes the events: a *Collector, or a *Fanout of several.
	Collector Sink
	// HMACKey, when set, makes a valid X-Hmac-Signature mandatory.
	HMACKey []byte

	// Counters, for diagnostics and tests.
	Accepted atomic.Int64 // reports the Collector counted
	Ignored  atomic.Int64 // authentic events nobody awaits: Idle, check-ins, other commands, repeats
	Rejected atomic.Int64 // refused: too large, bad signature, not an event
}

// ServeHTTP answers 200 to every well-formed, authentic event, wanted or
// not, since NanoMDM logs anything else as a delivery failure. Only events
// that pass the size bound and the signature check reach the Collector.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.ContentLength > MaxBody {
		rc.reject(w, "event too large", http.StatusRequestEntityTooLarge)
		return
	}
	// MaxBytesReader also covers chunked bodies and tells the server to
	// close the connection instead of draining the rest.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			rc.reject(w, "event too large", http.StatusRequestEntityTooLarge)
			return
		}
		rc.reject(w, "reading body", http.StatusBadRequest)
		return
	}
	if len(rc.HMACKey) > 0 {
		if err := VerifySignature(rc.HMACKey, body, r.Header.Get(SignatureHeader)); err != nil {
			rc.reject(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	ev, err := DecodeEvent(body)
	if err != nil {
		rc.reject(w, err.Error(), http.StatusBadRequest)
		return
	}
	if rc.Collector != nil && rc.Collector.DeliverEvent(ev) {
		rc.Accepted.Add(1)
	} else {
		rc.Ignored.Add(1)
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *Receiver) reject(w http.ResponseWriter, msg string, code int) {
	rc.Rejected.Add(1)
	http.Error(w, msg, code)
}

// Listen serves rc on addr at /webhook and / and returns the URL to give
// the MDM server. Port 0 picks a free port and the URL names it. An
// unspecified host (":0", "0.0.0.0:9099") listens on every interface; the
// URL then names loopback, which a server on another machine must replace
// with this machine's name.
func Listen(addr string, rc *Receiver) (url string, shutdown func(context.Context) error, err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("webhook listen %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhook", rc)
	mux.Handle("/{$}", rc)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { _ = srv.Serve(l) }()
	return "http://" + urlHost(addr, l.Addr().(*net.TCPAddr)) + "/webhook", srv.Shutdown, nil
}

// urlHost names the bound address so that a client on this machine can
// reach it: an unspecified IP becomes the loopback of the family asked for.
func urlHost(requested string, bound *net.TCPAddr) string {
	ip := bound.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if host, _, err := net.SplitHostPort(requested); err == nil {
			if h := net.ParseIP(host); h != nil && h.To4() == nil {
				ip = net.IPv6loopback
			}
		}
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(bound.Port))
}
