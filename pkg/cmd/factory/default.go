// Package factory wires the real dependencies into a cmdutil.Factory: the
// process's streams and environment, the config file, and the server
// adapters chosen by kind.
package factory

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/fleet"
	"github.com/mdmctl/mdmctl/pkg/httpclient"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/fleetdm"
	"github.com/mdmctl/mdmctl/pkg/server/micromdm"
	"github.com/mdmctl/mdmctl/pkg/server/nanomdm"
	"github.com/mdmctl/mdmctl/pkg/server/raw"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// New returns the factory mdmctl runs with.
func New() *cmdutil.Factory {
	f := &cmdutil.Factory{
		IOStreams: iostreams.System(),
		Getenv:    os.Getenv,
		Now:       time.Now,
	}
	f.ConfigPath = func(flags *pflag.FlagSet) string { return ConfigPath(flags, f.Getenv) }
	f.Settings = func(flags *pflag.FlagSet) (config.Settings, error) {
		path := f.ConfigPath(flags)
		file, err := config.Load(path)
		if err != nil {
			return config.Settings{}, err
		}
		ctxName, _ := flags.GetString("context")
		s, err := config.Resolve(file, config.Source{Getenv: f.Getenv, Flags: flags, ContextFlag: ctxName})
		if w := config.PermissionWarning(path); w != "" && err == nil {
			s.Warnings = append(s.Warnings, w)
		}
		return s, err
	}
	f.Connect = func(ctx context.Context, s config.Settings, opts cmdutil.ConnectOptions) (*cmdutil.Connection, error) {
		return Connect(ctx, s, opts, f.IOStreams)
	}
	return f
}

// ConfigPath is --config, else MDMCTL_CONFIG, else the XDG default.
func ConfigPath(flags *pflag.FlagSet, getenv func(string) string) string {
	if flags != nil {
		if p, _ := flags.GetString("config"); p != "" {
			return p
		}
	}
	if p := getenv(config.EnvConfig); p != "" {
		return p
	}
	return config.DefaultPath(getenv)
}

// Connect opens the server for s. Problems with the settings themselves are
// usage errors: nothing has been sent.
func Connect(_ context.Context, s config.Settings, opts cmdutil.ConnectOptions, streams *iostreams.IOStreams) (*cmdutil.Connection, error) {
	if s.Kind == config.KindSandbox {
		if s.Server != "" {
			return nil, cmdutil.Usagef("the sandbox kind runs in-process and takes no --server (for a served sandbox use --kind nanomdm)")
		}
		return connectSandbox(opts, streams)
	}
	if s.Server == "" {
		return nil, cmdutil.Usagef("no server configured: use --server, MDMCTL_SERVER or a context (mdmctl config set-context), or try mdmctl with --context sandbox")
	}
	u, err := config.ValidateServerURL(s.Kind, s.Server)
	if err != nil {
		return nil, &cmdutil.UsageError{Err: err}
	}
	if u.Scheme == "http" && !isLoopback(u) && !s.AllowInsecureHTTP {
		return nil, cmdutil.Usagef("refusing to send credentials over plain http to %s: use https, or --allow-insecure-http", server.Origin(u))
	}
	if s.APIKey == "" && s.Kind != config.KindRaw {
		return nil, cmdutil.Usagef("no API key: set MDMCTL_API_KEY, --api-key-file, or api-key-file in the context")
	}
	if s.InsecureSkipVerify {
		fmt.Fprintln(streams.ErrOut, streams.ColorErr().Yellow("warning: --insecure-skip-verify: the server's TLS certificate is not verified"))
	}
	hc, err := httpclient.New(httpclient.Options{
		CAFile:             s.CAFile,
		ClientCertFile:     s.ClientCertFile,
		ClientKeyFile:      s.ClientKeyFile,
		InsecureSkipVerify: s.InsecureSkipVerify,
		Timeout:            opts.Timeout,
		ConnectTimeout:     opts.ConnectTimeout,
		MaxConnsPerHost:    opts.Concurrency,
		Debug:              debugWriter(opts.Debug, streams),
	})
	if err != nil {
		return nil, &cmdutil.UsageError{Err: err}
	}
	retry := server.DefaultRetry
	retry.Max, retry.Timeout = opts.Retries, opts.Timeout
	conn := &cmdutil.Connection{Name: server.Origin(u), Close: func() { hc.CloseIdleConnections() }}
	switch s.Kind {
	case config.KindNanoMDM:
		conn.Server = &nanomdm.Client{BaseURL: u, User: s.APIUser, APIKey: s.APIKey, HTTP: hc, Retry: retry}
		conn.Limits, conn.CanSkipPush = fleet.DefaultLimits, true
	case config.KindMicroMDM:
		conn.Server = &micromdm.Client{BaseURL: u, User: s.APIUser, APIKey: s.APIKey, HTTP: hc, Retry: retry}
		conn.Limits = fleet.PerDevice
	case config.KindFleet:
		fc := &fleetdm.Client{BaseURL: u, Token: s.APIKey, HTTP: hc, Retry: retry}
		conn.Server, conn.Limits = fc, fleet.BodyLimits
		conn.Answers, conn.Close = watchFleet(fc, streams, hc)
		conn.Facts = func(ctx context.Context, ids []string) map[string]apple.Device {
			known, err := fc.Devices(ctx, ids, opts.Concurrency)
			if err != nil {
				warn(streams, fmt.Sprintf("reading device facts from Fleet: %v; the guard treats the devices it could not read as unknown", err))
			}
			return known
		}
	case config.KindRaw:
		conn.Server = &raw.Client{URL: s.Server, User: s.APIUser, APIKey: s.APIKey, HTTP: hc, Retry: retry}
		conn.Limits, conn.Synchronous = fleet.PerDevice, true
	default:
		return nil, cmdutil.Usagef("server kind %q is not supported yet", s.Kind)
	}
	return conn, nil
}

// watchFleet polls Fleet for answers (it has no webhook for them) from the
// moment a run starts waiting until the connection closes.
func watchFleet(fc *fleetdm.Client, streams *iostreams.IOStreams, hc *http.Client) (func(*webhook.Collector), func()) {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	warned := map[string]bool{}
	onError := func(err error) { // called from the one polling goroutine
		if msg := err.Error(); !warned[msg] {
			warned[msg] = true
			warn(streams, "polling Fleet for answers: "+msg)
		}
	}
	answers := func(col *webhook.Collector) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fc.Watch(ctx, col, onError)
		}()
	}
	closeConn := func() {
		stop()
		wg.Wait()
		hc.CloseIdleConnections()
	}
	return answers, closeConn
}

func warn(streams *iostreams.IOStreams, msg string) {
	fmt.Fprintln(streams.ErrOut, streams.ColorErr().Yellow("warning: "+output.Escape(msg)))
}

func debugWriter(on bool, streams *iostreams.IOStreams) io.Writer {
	if !on {
		return nil
	}
	return streams.ErrOut
}

func isLoopback(u *url.URL) bool {
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// connectSandbox starts the in-process sandbox: a real NanoMDM and its
// simulated fleet, reached without a socket.
func connectSandbox(opts cmdutil.ConnectOptions, streams *iostreams.IOStreams) (*cmdutil.Connection, error) {
	sb, err := sandbox.Start(sandbox.Options{})
	if err != nil {
		return nil, err
	}
	hc, err := httpclient.New(httpclient.Options{Transport: sb.Transport(), Timeout: opts.Timeout, Debug: debugWriter(opts.Debug, streams)})
	if err != nil {
		sb.Close()
		return nil, err
	}
	base, _ := url.Parse(sandbox.BaseURL)
	return &cmdutil.Connection{
		Server:      &nanomdm.Client{BaseURL: base, APIKey: sandbox.APIKey, HTTP: hc, Retry: server.Retry{}},
		Limits:      fleet.DefaultLimits,
		CanSkipPush: true,
		Name:        "sandbox",
		Close:       sb.Close,
		Answers:     sb.Subscribe,
		Facts:       sb.Facts,
	}, nil
}
