// Package nanomdmtest runs the real NanoMDM v0.9.0 server on loopback for
// tests and benchmarks, installing the binary from the Go module proxy when
// it is missing, and enrolls simulated devices into it.
package nanomdmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// Version is the NanoMDM release mdmctl is tested against.
const Version = "v0.9.0"

// Options configure a server.
type Options struct {
	APIKey         string // default "nanomdm-test-key"
	WebhookURL     string
	WebhookHMACKey string
}

// Server is a running NanoMDM.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	APIKey string
	CA     *simdevice.CA
	cmd    *exec.Cmd
	log    *syncBuffer
	done   chan struct{}
}

var installMu sync.Mutex

// Binary returns the nanomdm binary: $MDMCTL_NANOMDM, else <module>/.bin/nanomdm,
// installed with `go install` when missing.
func Binary() (string, error) {
	if p := os.Getenv("MDMCTL_NANOMDM"); p != "" {
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".bin", "nanomdm")
	installMu.Lock()
	defer installMu.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	// Install into a private GOBIN and rename, so test packages running in
	// parallel never see a half-written binary.
	tmp, err := os.MkdirTemp(filepath.Join(root, ".bin"), "install-")
	if err != nil {
		if err := os.MkdirAll(filepath.Join(root, ".bin"), 0o755); err != nil {
			return "", err
		}
		if tmp, err = os.MkdirTemp(filepath.Join(root, ".bin"), "install-"); err != nil {
			return "", err
		}
	}
	defer os.RemoveAll(tmp)
	install := exec.Command("go", "install", "github.com/micromdm/nanomdm/cmd/nanomdm@"+Version)
	install.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod")
	if out, err := install.CombinedOutput(); err != nil {
		return "", fmt.Errorf("installing nanomdm %s: %v\n%s", Version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "nanomdm"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Start runs NanoMDM with in-memory storage on a free loopback port and
// waits until it answers. Stop it with Close.
func Start(opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	ca, err := simdevice.NewCA("mdmctl test device CA")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "nanomdm-")
	if err != nil {
		return nil, err
	}
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.PEM(), 0o600); err != nil {
		return nil, err
	}
	key := opts.APIKey
	if key == "" {
		key = "nanomdm-test-key"
	}
	// NanoMDM cannot report a :0 port and exits 0 when its port is taken,
	// so pick a free port and try again if another process won the race.
	var lastErr error
	for try := 0; try < 5; try++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launch(bin, dir, caPath, key, port, opts)
		if err == nil {
			s.CA = ca
			return s, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func launch(bin, dir, caPath, key string, port int, opts Options) (*Server, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"-listen", addr, "-ca", caPath, "-api", key, "-storage", "inmem", "-storage-dsn", ""}
	if opts.WebhookURL != "" {
		args = append(args, "-webhook-url", opts.WebhookURL)
	}
	if opts.WebhookHMACKey != "" {
		args = append(args, "-webhook-hmac-key", opts.WebhookHMACKey)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + addr, APIKey: key, cmd: cmd, log: log, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("nanomdm exited before answering on %s:\n%s", addr, log.String())
		default:
		}
		resp, err := http.Get(s.URL + "/version")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Close()
	return nil, fmt.Errorf("nanomdm did not answer on %s within 20s:\n%s", addr, log.String())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Close kills the server and waits for it.
func (s *Server) Close() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
	}
	<-s.done
	os.RemoveAll(s.cmd.Dir)
}

// Log is what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// MDMURL is where devices check in and fetch commands.
func (s *Server) MDMURL() string { return s.URL + "/mdm" }

// Enroll creates a simulated device and enrolls it.
func (s *Server) Enroll(ctx context.Context, f simdevice.Facts, b simdevice.Behavior) (*simdevice.Device, error) {
	d, err := simdevice.New(f, b, s.MDMURL(), s.CA, nil)
	if err != nil {
		return nil, err
	}
	return d, d.Enroll(ctx)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.b.String())
}
