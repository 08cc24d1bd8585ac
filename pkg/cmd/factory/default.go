// Package factory wires the real dependencies into a cmdutil.Factory: the
// process's streams and environment, the config file, and the server kinds'
// drivers.
package factory

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/httpclient"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/server"

	// Every kind mdmctl ships registers itself.
	_ "github.com/mdmctl/mdmctl/pkg/server/drivers"
)

// New returns the factory mdmctl runs with, on streams, reading its
// environment through getenv.
func New(streams *iostreams.IOStreams, getenv func(string) string) *cmdutil.Factory {
	f := &cmdutil.Factory{
		IOStreams: streams,
		Getenv:    getenv,
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
	f.Connect = func(ctx context.Context, s config.Settings, opts connect.Options) (*connect.Connection, error) {
		return Connect(ctx, s, opts, f.IOStreams)
	}
	f.OpenHistory = OpenHistory
	f.OSUser = func() string { return OSUser(f.Getenv) }
	return f
}

// OpenHistory opens the lock history at s.History. A history that cannot
// be opened stops the command before anything is sent: a lock run relies
// on it to keep a Mac from a second PIN.
func OpenHistory(s config.Settings) (*history.Store, error) {
	if s.History == "" {
		return nil, exitcode.Usagef("no place for the lock history (no home folder): give --history FILE or %s", config.EnvHistory)
	}
	st, err := history.Open(s.History)
	if err != nil {
		return nil, &exitcode.UsageError{Err: fmt.Errorf("%v (--history FILE or %s picks another place)", err, config.EnvHistory)}
	}
	return st, nil
}

// OSUser is the login name of whoever runs mdmctl, for the history: the
// account's name, else $USER, else the numeric user ID.
func OSUser(getenv func(string) string) string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := getenv("USER"); name != "" {
		return name
	}
	return fmt.Sprintf("uid %d", os.Getuid())
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

// Connect opens the server for s through its kind's driver. Problems with
// the settings themselves are usage errors: nothing has been sent.
func Connect(ctx context.Context, s config.Settings, opts connect.Options, streams *iostreams.IOStreams) (*connect.Connection, error) {
	d, ok := server.Lookup(s.Kind)
	if !ok {
		return nil, exitcode.Usagef("server kind %q is not supported", s.Kind)
	}
	cfg := server.Config{User: s.APIUser, APIKey: s.APIKey, Tenant: s.Tenant, Concurrency: opts.Concurrency, Timeout: opts.Timeout,
		Debug: debugWriter(opts.Debug, streams), Warn: func(msg string) { output.Warn(streams, msg) }}
	if s.History != "" {
		// Beside the history, whose locks `mdmctl status` asks about.
		cfg.StateDir = filepath.Dir(s.History)
	}
	if d.InProcess {
		if s.Server != "" {
			return nil, exitcode.Usagef("the %s kind runs in-process and takes no --server", d.Kind)
		}
		return open(ctx, d, cfg)
	}
	if s.Server == "" {
		return nil, exitcode.Usagef("no server configured: use --server, MDMCTL_SERVER or a context (mdmctl config set-context), or try mdmctl with --context sandbox")
	}
	u, err := config.ValidateServerURL(s.Kind, s.Server)
	if err != nil {
		return nil, &exitcode.UsageError{Err: err}
	}
	if u.Scheme == "http" && !isLoopback(u) && !s.AllowInsecureHTTP {
		return nil, exitcode.Usagef("refusing to send credentials over plain http to %s: use https, or --allow-insecure-http", server.Origin(u))
	}
	if s.APIKey == "" && d.NeedsAPIKey {
		return nil, exitcode.Usagef("no API key: set MDMCTL_API_KEY, --api-key-file, or api-key-file in the context")
	}
	if s.InsecureSkipVerify {
		output.Warn(streams, "--insecure-skip-verify: the server's TLS certificate is not verified")
	}
	hc, err := httpclient.New(httpclient.Options{
		CAFile:             s.CAFile,
		ClientCertFile:     s.ClientCertFile,
		ClientKeyFile:      s.ClientKeyFile,
		InsecureSkipVerify: s.InsecureSkipVerify,
		Timeout:            opts.Timeout,
		ConnectTimeout:     opts.ConnectTimeout,
		MaxConnsPerHost:    opts.Concurrency,
		Debug:              cfg.Debug,
	})
	if err != nil {
		return nil, &exitcode.UsageError{Err: err}
	}
	cfg.BaseURL, cfg.RawURL, cfg.HTTP = u, s.Server, hc
	cfg.Retry = server.DefaultRetry
	cfg.Retry.Max, cfg.Retry.Timeout = opts.Retries, opts.Timeout
	return open(ctx, d, cfg)
}

func open(ctx context.Context, d server.Driver, cfg server.Config) (*connect.Connection, error) {
	sess, err := d.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &connect.Connection{Session: sess, Driver: d}, nil
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
