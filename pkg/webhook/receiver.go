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

// MaxBody bounds one event; NanoMDM's events for DeviceLock are small.
const MaxBody = 1 << 20

// Receiver is the HTTP endpoint NanoMDM's -webhook-url points at.
type Receiver struct {
	Collector *Collector
	// HMACKey, when set, makes a valid X-Hmac-Signature mandatory.
	HMACKey []byte
	// Rejected counts events refused for their signature or shape.
	Rejected atomic.Int64
}

// ServeHTTP answers 200 to every well-formed, authentic event, wanted or
// not, since NanoMDM counts anything else as a delivery failure.
func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	if len(body) > MaxBody {
		rc.Rejected.Add(1)
		http.Error(w, "event too large", http.StatusRequestEntityTooLarge)
		return
	}
	if rc.HMACKey != nil {
		if err := VerifySignature(rc.HMACKey, body, r.Header.Get(SignatureHeader)); err != nil {
			rc.Rejected.Add(1)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	ev, err := DecodeEvent(body)
	if err != nil {
		rc.Rejected.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ev.Acknowledge != nil {
		if resp, err := ev.Acknowledge.Response(); err == nil {
			if resp.UDID == "" && resp.EnrollmentID == "" {
				resp.UDID, resp.EnrollmentID = ev.Acknowledge.UDID, ev.Acknowledge.EnrollmentID
			}
			rc.Collector.Deliver(resp)
		}
	}
	w.WriteHeader(http.StatusOK)
}

// Listen serves rc on addr (":0" picks a port) at / and /webhook, and
// returns the URL to give the MDM server.
func Listen(addr string, rc *Receiver) (url string, shutdown func(context.Context) error, err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("webhook listen %s: %v", addr, err)
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = l.Close()
		}
	}()
	host := l.Addr().String()
	return "http://" + host + "/webhook", srv.Shutdown, nil
}
