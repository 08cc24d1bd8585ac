// Package nanomdmtest runs the real NanoMDM v0.9.0 server on loopback for
// tests, benchmarks and scripts, installing the binary from the Go module
// proxy when it is missing, and enrolls simulated devices into it.
//
// The core (Binary, Start, Server.Enroll) returns errors, for programs that
// are not tests; BinaryT, StartT and Server.NewDevice take a TB and fail it.
package nanomdmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/internal/logbuf"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// TB is the part of testing.TB the helpers use, so any test type fits.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	Failed() bool
	TempDir() string
}

// DefaultAPIKey is the API key when Options.APIKey is empty.
const DefaultAPIKey = "nanomdm-test-key"

// Options configure a server.
type Options struct {
	APIKey         string // -api; default DefaultAPIKey
	WebhookURL     string // -webhook-url
	WebhookHMACKey string // -webhook-hmac-key
	// CA is the device CA written to the -ca file; nil makes a fresh one.
	CA *simdevice.CA
	// CAPEM, when set, is written to the -ca file instead of CA's PEM (a
	// self-signed device identity, say); Server.CA is then CA, possibly nil.
	CAPEM []byte
	// CheckinEndpoint serves check-ins on /checkin and commands on /mdm (-checkin).
	CheckinEndpoint bool
	Debug           bool     // -debug
	ExtraArgs       []string // appended to the command line
	// ReadyTimeout bounds each start attempt; default 20s.
	ReadyTimeout time.Duration
	// Storage is the backend; default InMem. PgSQL gives the server its
	// own fresh database on a PostgreSQL cluster shared by the process.
	Storage Storage
}

// Server is a running NanoMDM.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	APIKey string
	CA     *simdevice.CA // issues identities the server accepts; nil with Options.CAPEM alone
	CAFile string        // the -ca file
	// Attempts counts start attempts; above 1 means a port was lost to a race.
	Attempts int
	Storage  Storage
	Database string // with PgSQL: the server's database (see Query)

	checkin bool
	cmd     *exec.Cmd
	log     *logbuf.Buffer
	done    chan struct{}
	ownDir  string // removed by Close when Start made it
	close   sync.Once
}

// Start runs NanoMDM with the storage opts asks for (in memory by default)
// on a free loopback port and waits until it answers. Stop it with Close.
func Start(opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "nanomdm-")
	if err != nil {
		return nil, err
	}
	s, err := start(opts, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s.ownDir = dir
	return s, nil
}

// StartT is Start for tests: files go to t.TempDir(), the server is killed
// in t.Cleanup, and its log is added to the test log when the test failed.
func StartT(t TB, opts Options) *Server {
	t.Helper()
	s, err := start(opts, t.TempDir())
	if err != nil {
		t.Fatalf("starting nanomdm: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("nanomdm %s log:\n%s", s.URL, s.Log())
		}
	})
	return s
}

// errPortLost marks an attempt whose port another process took first.
var errPortLost = errors.New("listen address taken")

// pickPort is a variable so a test can hand out a taken port.
var pickPort = freePort

func start(opts Options, dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	ca, caPEM := opts.CA, opts.CAPEM
	if ca == nil && caPEM == nil {
		if ca, err = simdevice.NewCA("mdmctl test device CA"); err != nil {
			return nil, err
		}
	}
	if caPEM == nil {
		caPEM = ca.PEM()
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		return nil, err
	}
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 20 * time.Second
	}
	if opts.Storage == "" {
		opts.Storage = InMem
	}
	storage, db, err := storageArgs(opts.Storage, dir)
	if err != nil {
		return nil, fmt.Errorf("%s storage: %w", opts.Storage, err)
	}
	// NanoMDM never reports the port it got for :0, and when its port is
	// taken it logs and exits 0; so pick a free port, and pick another if
	// a different process won the race for it.
	var lost []string
	for attempt := 1; attempt <= 5; attempt++ {
		port, err := pickPort()
		if err != nil {
			return nil, err
		}
		s, err := launch(bin, dir, caFile, port, storage, opts)
		if err == nil {
			s.CA, s.CAFile, s.Attempts = ca, caFile, attempt
			s.Storage, s.Database = opts.Storage, db
			return s, nil
		}
		if !errors.Is(err, errPortLost) {
			return nil, err
		}
		lost = append(lost, err.Error())
	}
	return nil, fmt.Errorf("nanomdm: no free port after 5 attempts:\n%s", strings.Join(lost, "\n"))
}

func launch(bin, dir, caFile string, port int, storage []string, opts Options) (*Server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append([]string{"-listen", addr, "-ca", caFile, "-api", opts.APIKey}, storage...)
	if opts.WebhookURL != "" {
		args = append(args, "-webhook-url", opts.WebhookURL)
	}
	if opts.WebhookHMACKey != "" {
		args = append(args, "-webhook-hmac-key", opts.WebhookHMACKey)
	}
	if opts.CheckinEndpoint {
		args = append(args, "-checkin")
	}
	if opts.Debug {
		args = append(args, "-debug")
	}
	args = append(args, opts.ExtraArgs...)

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir // nothing may land in the caller's working directory
	// Keep NANOMDM_* variables from overriding the flags (envflag).
	cmd.Env = filterEnv(os.Environ(), "NANOMDM_")
	log := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + addr, APIKey: opts.APIKey, checkin: opts.CheckinEndpoint, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()

	if err := s.waitReady(opts.ReadyTimeout); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// waitReady polls /version until it answers, the process exits, or the
// timeout passes. Both outcomes are checked on every round, since an exit
// (status 0) is how NanoMDM says its port was taken.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	// A probe must not outlive the process: on a lost port it may be
	// talking to whatever holds that port.
	probeCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-probeCtx.Done():
		}
	}()
	hc := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.done:
			return s.exitError()
		default:
		}
		if s.answersVersion(probeCtx, hc) {
			// Answered; make sure it was our process and not a squatter.
			select {
			case <-s.done:
				return s.exitError()
			default:
				return nil
			}
		}
		select {
		case <-s.done:
			return s.exitError()
		case <-deadline.C:
			return fmt.Errorf("nanomdm did not answer on %s within %s:\n%s", s.URL, timeout, s.Log())
		case <-tick.C:
		}
	}
}

func (s *Server) exitError() error {
	log := s.Log()
	if strings.Contains(log, "address already in use") || strings.Contains(log, "bind:") {
		return fmt.Errorf("%w: nanomdm on %s exited (%s): %s", errPortLost, s.URL, s.cmd.ProcessState, logbuf.LastLine(log))
	}
	return fmt.Errorf("nanomdm on %s exited (%s) before answering:\n%s", s.URL, s.cmd.ProcessState, log)
}

func (s *Server) answersVersion(ctx context.Context, hc *http.Client) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/version", nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var v struct {
		Version *string `json:"version"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&v) == nil && v.Version != nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func filterEnv(env []string, prefix string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

// Close kills the server by its PID, waits for it, and removes the
// directory Start made. It is safe to call more than once.
func (s *Server) Close() {
	s.close.Do(func() {
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
		}
		<-s.done
		if s.ownDir != "" {
			os.RemoveAll(s.ownDir)
		}
	})
}

// PID is the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Exited is closed when the server process has ended.
func (s *Server) Exited() <-chan struct{} { return s.done }

// Log is what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// MDMURL is where devices poll and report command results.
func (s *Server) MDMURL() string { return s.URL + simdevice.DefaultPath }

// CheckInURL is where devices send check-in messages.
func (s *Server) CheckInURL() string {
	if s.checkin {
		return s.URL + "/checkin"
	}
	return s.MDMURL()
}

// DeviceConfig is a simdevice configuration for this server, with an
// identity its CA issues; adjust it (KeyType, Transport, ...) before
// simdevice.NewDevice.
func (s *Server) DeviceConfig(f simdevice.Facts, b simdevice.Behavior) simdevice.Config {
	cfg := simdevice.Config{Facts: f, Behavior: b, BaseURL: s.URL, CA: s.CA}
	if s.checkin {
		cfg.CheckInPath = "/checkin"
	}
	return cfg
}

// Enroll creates a simulated device and enrolls it.
func (s *Server) Enroll(ctx context.Context, f simdevice.Facts, b simdevice.Behavior) (*simdevice.Device, error) {
	d, err := simdevice.NewDevice(s.DeviceConfig(f, b))
	if err != nil {
		return nil, err
	}
	return d, d.Enroll(ctx)
}

// NewDevice enrolls a simulated device with UDID udid and the other facts
// of f, failing t (with the server log) when enrollment fails.
func (s *Server) NewDevice(t TB, udid string, b simdevice.Behavior, f simdevice.Facts) *simdevice.Device {
	t.Helper()
	f.UDID = udid
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := s.Enroll(ctx, f, b)
	if err != nil {
		t.Fatalf("enrolling %s: %v\nnanomdm log:\n%s", udid, err, s.Log())
	}
	return d
}

// EnqueueResult is NanoMDM's answer to /v1/enqueue (every field omitted
// when empty; errors are strings).
type EnqueueResult struct {
	HTTPStatus   int                      `json:"-"`
	Status       map[string]EnqueueStatus `json:"status,omitempty"`
	NoPush       bool                     `json:"no_push,omitempty"`
	PushError    string                   `json:"push_error,omitempty"`
	CommandError string                   `json:"command_error,omitempty"`
	CommandUUID  string                   `json:"command_uuid,omitempty"`
	RequestType  string                   `json:"request_type,omitempty"`
}

// EnqueueStatus is the per-ID part of an EnqueueResult.
type EnqueueStatus struct {
	PushResult   string `json:"push_result,omitempty"`
	PushError    string `json:"push_error,omitempty"`
	CommandError string `json:"command_error,omitempty"`
}

// Enqueue queues a raw command plist for ids through the API, with
// ?nopush=1 since there is no APNs here: PUT /v1/enqueue/ID1,ID2 with Basic
// auth nanomdm:APIKey. It fails unless NanoMDM answers 200; the result is
// returned either way when its JSON could be read.
func (s *Server) Enqueue(ctx context.Context, payload []byte, ids ...string) (*EnqueueResult, error) {
	esc := make([]string, len(ids))
	for i, id := range ids {
		esc[i] = url.PathEscape(id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.URL+"/v1/enqueue/"+strings.Join(esc, ",")+"?nopush=1", bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("nanomdm", s.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	res := &EnqueueResult{HTTPStatus: resp.StatusCode}
	if err := json.Unmarshal(body, res); err != nil {
		return nil, fmt.Errorf("enqueue: HTTP %d: %q: %w", resp.StatusCode, body, err)
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("enqueue: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return res, nil
}
