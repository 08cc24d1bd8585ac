// Package httpclient builds the one HTTP client mdmctl talks to servers
// with: verified TLS (private CAs, client certificates), connect and overall
// timeouts, keep-alive sized for concurrent batches, redirects that never
// carry credentials to another host, and a redacted debug trace.
package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// Options configure the client.
type Options struct {
	CAFile             string
	ClientCertFile     string
	ClientKeyFile      string
	InsecureSkipVerify bool
	ConnectTimeout     time.Duration
	// Timeout bounds each request, from dial to the last byte of the reply.
	Timeout time.Duration
	// MaxConnsPerHost sizes the keep-alive pool to the run's concurrency.
	MaxConnsPerHost int
	// Debug, when set, receives a redacted trace of every exchange.
	Debug io.Writer
	// Transport replaces the network transport (the in-process sandbox).
	Transport http.RoundTripper
}

// New returns a client for opts; a bad CA or certificate file is an error
// naming the file.
func New(opts Options) (*http.Client, error) {
	rt := opts.Transport
	if rt == nil {
		tlsConfig, err := tlsConfig(opts)
		if err != nil {
			return nil, err
		}
		connect := opts.ConnectTimeout
		if connect <= 0 {
			connect = 10 * time.Second
		}
		conns := opts.MaxConnsPerHost
		if conns < 2 {
			conns = 2
		}
		rt = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsConfig,
			TLSHandshakeTimeout:   connect,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          conns * 2,
			MaxIdleConnsPerHost:   conns,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	if opts.Debug != nil {
		rt = &tracer{next: rt, w: opts.Debug}
	}
	return &http.Client{
		Transport:     rt,
		Timeout:       opts.Timeout,
		CheckRedirect: checkRedirect,
	}, nil
}

func tlsConfig(opts Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opts.InsecureSkipVerify} //nolint:gosec // only on explicit --insecure-skip-verify, warned about on every run
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: %v", opts.CAFile, unwrapPath(err))
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", opts.CAFile)
		}
		cfg.RootCAs = pool
	}
	switch {
	case opts.ClientCertFile != "" && opts.ClientKeyFile != "":
		cert, err := tls.LoadX509KeyPair(opts.ClientCertFile, opts.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s / key %s: %v", opts.ClientCertFile, opts.ClientKeyFile, unwrapPath(err))
		}
		cfg.Certificates = []tls.Certificate{cert}
	case opts.ClientCertFile != "" || opts.ClientKeyFile != "":
		return nil, errors.New("a client certificate needs both --client-cert-file and --client-key-file")
	}
	return cfg, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// maxRedirects bounds a redirect chain (loops end here with a clear error).
const maxRedirects = 5

// checkRedirect follows only same-host redirects: Go drops Authorization on
// a cross-host hop, but the request would then fail confusingly, and a
// redirect of an enqueue PUT to another host is never legitimate.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: stopped after %d redirects (redirect loop?)", server.ErrRefusedRedirect, maxRedirects)
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return fmt.Errorf("%w: refusing redirect from %s://%s to %s://%s: credentials stay with the configured server",
			server.ErrRefusedRedirect, via[0].URL.Scheme, via[0].URL.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}
