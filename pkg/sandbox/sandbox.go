// Package sandbox is a whole MDM in one process: the real NanoMDM (imported
// as a library, in-memory storage) and a set of simulated Apple devices
// that enroll for real, are woken by the sandbox's push, fetch commands and
// answer as Apple devices do. It needs no network, certificates or setup.
package sandbox

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	nlhttp "github.com/micromdm/nanolib/http"
	"github.com/micromdm/nanolib/log"
	"github.com/micromdm/nanomdm/certverify"
	"github.com/micromdm/nanomdm/cryptoutil"
	httpapi "github.com/micromdm/nanomdm/http/api"
	httpmdm "github.com/micromdm/nanomdm/http/mdm"
	"github.com/micromdm/nanomdm/mdm"
	"github.com/micromdm/nanomdm/push"
	"github.com/micromdm/nanomdm/service"
	"github.com/micromdm/nanomdm/service/certauth"
	"github.com/micromdm/nanomdm/service/multi"
	"github.com/micromdm/nanomdm/service/nanomdm"
	nanowebhook "github.com/micromdm/nanomdm/service/webhook"
	"github.com/micromdm/nanomdm/storage/inmem"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// APIKey is the sandbox's API key; it guards nothing real.
const APIKey = "sandbox"

// BaseURL is the sandbox's address when it runs in-process.
const BaseURL = "http://sandbox.mdmctl.invalid"

// Options configure a sandbox.
type Options struct {
	// WebhookURL also forwards every webhook event to an outside receiver
	// (`mdmctl sandbox serve` for `mdmctl lock --wait` in another process).
	WebhookURL string
	// PollInterval is how often devices check in on their own, which is
	// how a device that said NotNow gets the command again.
	PollInterval time.Duration
	// AnswersFile, when set, keeps the devices' final answers across runs:
	// a later sandbox hands them to its subscribers (`mdmctl status`).
	AnswersFile string
}

// Sandbox is a running in-process MDM with its simulated devices.
type Sandbox struct {
	handler http.Handler
	devices map[string]*simdevice.Device
	members []Member

	mu         sync.Mutex
	collectors []*webhook.Collector
	// woken are the devices pushed to, which Close lets check in.
	woken   map[string]bool
	answers *answerLog
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	pushes  atomic.Int64
}

// Start builds the server, enrolls the members and starts the devices.
func Start(opts Options) (*Sandbox, error) {
	ca, err := simdevice.NewCA("mdmctl sandbox device CA")
	if err != nil {
		return nil, err
	}
	s := &Sandbox{devices: map[string]*simdevice.Device{}, members: Members, woken: map[string]bool{}}
	if opts.AnswersFile != "" {
		s.answers = &answerLog{path: opts.AnswersFile}
	}
	store := inmem.New()
	logger := log.NopLogger

	verifier, err := certverify.NewPoolVerifier(ca.PEM(), nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	var svc service.CheckinAndCommandService = nanomdm.New(store, nanomdm.WithLogger(logger))
	if opts.WebhookURL != "" {
		// Another process waits: NanoMDM's own webhook, as a real server would send it.
		hook := nanowebhook.New(opts.WebhookURL)
		svc = multi.New(logger, svc, hook)
	}
	// This process waits: each report is handed over synchronously, in the
	// order the device sent it (NanoMDM's webhook posts asynchronously, so
	// a NotNow and the Acknowledged right after it could swap).
	svc = &resultTap{CheckinAndCommandService: svc, sandbox: s}
	svc = certauth.New(svc, store, certauth.WithLogger(logger))

	var mdmHandler http.Handler = httpmdm.CheckinAndCommandHandler(svc, logger)
	mdmHandler = httpmdm.CertVerifyMiddleware(mdmHandler, verifier, logger)
	mdmHandler = httpmdm.CertExtractMdmSignatureMiddleware(mdmHandler, httpmdm.MdmSignatureVerifierFunc(cryptoutil.VerifyMdmSignature))

	mux := http.NewServeMux()
	mux.Handle("/mdm", mdmHandler)
	api := nlhttp.NewMWMux(mux)
	api.Use(func(h http.Handler) http.Handler {
		return nlhttp.NewSimpleBasicAuthHandler(h, "nanomdm", APIKey, "nanomdm")
	})
	httpapi.HandleAPIv1("/v1", api, logger, store, &pusher{sandbox: s})
	mux.Handle("/raw/", nlhttp.NewSimpleBasicAuthHandler(http.StripPrefix("/raw/", http.HandlerFunc(s.serveRaw)), "nanomdm", APIKey, "nanomdm"))
	mux.HandleFunc("/version", nlhttp.NewJSONVersionHandler("mdmctl-sandbox (nanomdm v0.9.0)"))
	s.handler = mux

	inproc := &http.Client{Transport: s.Transport(), Timeout: 30 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	interval := opts.PollInterval
	if interval <= 0 {
		interval = 300 * time.Millisecond
	}
	for _, m := range s.members {
		d, err := simdevice.NewDevice(simdevice.Config{Facts: m.Facts, Behavior: simdevice.Behave(m.Behavior), BaseURL: BaseURL, CA: ca, Client: inproc})
		if err != nil {
			cancel()
			return nil, err
		}
		if err := d.Enroll(ctx); err != nil {
			cancel()
			return nil, fmt.Errorf("sandbox: enrolling %s: %w", m.Facts.UDID, err)
		}
		s.devices[m.Facts.UDID] = d
		if !d.Behavior.Offline() {
			s.wg.Add(1)
			go func() { defer s.wg.Done(); _ = d.Run(ctx, interval) }()
		}
	}
	return s, nil
}

// Close stops the devices. Each device woken by a push first checks in
// once more, as a real device woken would, even if it had not yet: a lock
// sent without --wait is answered, and the answer kept for later.
func (s *Sandbox) Close() {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	woken := s.woken
	s.woken = map[string]bool{}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for id := range woken {
		if d := s.devices[id]; !d.Behavior.Offline() {
			_ = d.CheckIn(ctx)
		}
	}
}

// Handler serves NanoMDM's API (/v1/...), the device endpoint (/mdm) and
// the raw exchange (/raw/{udid}).
func (s *Sandbox) Handler() http.Handler { return s.handler }

// Transport reaches the sandbox without a socket.
func (s *Sandbox) Transport() http.RoundTripper { return handlerTransport{s.handler} }

// Members lists the simulated devices.
func (s *Sandbox) Members() []Member { return s.members }

// Facts returns what the sandbox knows about the devices among ids, for
// the guard.
func (s *Sandbox) Facts(_ context.Context, ids []string) map[string]apple.Device {
	known := map[string]apple.Device{}
	for _, id := range ids {
		if d, ok := s.devices[id]; ok {
			v, err := apple.ParseVersion(d.Facts.OSVersion)
			if err != nil {
				v = nil
			}
			known[id] = apple.Device{Platform: d.Facts.Platform, Model: d.Facts.Model, OSVersion: v}
		}
	}
	return known
}

// Device returns a simulated device (tests inspect what it received).
func (s *Sandbox) Device(udid string) (*simdevice.Device, bool) {
	d, ok := s.devices[udid]
	return d, ok
}

// Subscribe delivers to c every answer kept from earlier runs, then every
// device answer from now on.
func (s *Sandbox) Subscribe(c *webhook.Collector) {
	for _, r := range s.answers.all() {
		c.Deliver(r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.collectors = append(s.collectors, c)
}

func (s *Sandbox) deliver(r apple.Response) {
	s.answers.add(r)
	s.mu.Lock()
	cs := append([]*webhook.Collector(nil), s.collectors...)
	s.mu.Unlock()
	for _, c := range cs {
		c.Deliver(r)
	}
}

// pusher replaces APNs: a push wakes the simulated device, which checks in.
type pusher struct{ sandbox *Sandbox }

var _ push.Pusher = (*pusher)(nil)

func (p *pusher) Push(_ context.Context, ids []string) (map[string]*push.Response, error) {
	out := make(map[string]*push.Response, len(ids))
	for _, id := range ids {
		d, ok := p.sandbox.devices[id]
		if !ok {
			// NanoMDM would say "push data missing for id"; the sandbox knows better.
			out[id] = &push.Response{Err: errors.New("not a sandbox device (mdmctl sandbox devices lists them)")}
			continue
		}
		p.sandbox.mu.Lock()
		p.sandbox.woken[id] = true
		p.sandbox.mu.Unlock()
		n := p.sandbox.pushes.Add(1)
		out[id] = &push.Response{Id: fmt.Sprintf("sandbox-push-%d", n)}
		d.Wake()
	}
	return out, nil
}

// serveRaw is Apple's "Lock a Device" exchange: the command plist in, the
// device's response plist out, the device running it in between.
func (s *Sandbox) serveRaw(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	d, ok := s.devices[strings.TrimSuffix(r.URL.Path, "/")]
	if !ok {
		http.Error(w, "no such device", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading command", http.StatusBadRequest)
		return
	}
	if d.Behavior.Offline() {
		http.Error(w, "device did not answer", http.StatusGatewayTimeout)
		return
	}
	resp := d.Execute(body)
	resp.UDID = d.Facts.UDID
	out, err := resp.Encode()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	_, _ = w.Write(out)
}

// resultTap passes every device report to the subscribed collectors
// before NanoMDM handles it.
type resultTap struct {
	service.CheckinAndCommandService
	sandbox *Sandbox
}

func (t *resultTap) CommandAndReportResults(r *mdm.Request, results *mdm.CommandResults) (*mdm.Command, error) {
	if resp, err := apple.DecodeResponse(results.Raw); err == nil {
		t.sandbox.deliver(resp)
	}
	return t.CheckinAndCommandService.CommandAndReportResults(r, results)
}

// handlerTransport serves requests with a handler, no socket involved.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
