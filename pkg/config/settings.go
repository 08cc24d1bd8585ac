package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/mdmctl/mdmctl/internal/suggest"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// Environment variables mdmctl reads.
const (
	EnvConfig         = "MDMCTL_CONFIG"
	EnvContext        = "MDMCTL_CONTEXT"
	EnvServer         = "MDMCTL_SERVER"
	EnvKind           = "MDMCTL_KIND"
	EnvAPIKey         = "MDMCTL_API_KEY"
	EnvAPIKeyFile     = "MDMCTL_API_KEY_FILE"
	EnvWebhookHMACKey = "MDMCTL_WEBHOOK_HMAC_KEY"
	EnvHistory        = "MDMCTL_HISTORY"
)

// Settings are the resolved values for one run.
type Settings struct {
	// Context is the context in use, "" when none.
	Context            string
	Kind               string
	Server             string
	APIUser            string
	Tenant             string
	APIKey             string // secret: never print
	CAFile             string
	ClientCertFile     string
	ClientKeyFile      string
	WebhookListen      string
	WebhookHMACKey     string // secret: never print
	PINEscrowRecipient string // an age public key or recipients file; public
	// WebhookAllowUnsigned lets the receiver take unsigned events on an
	// address beyond loopback (--webhook-allow-unsigned).
	WebhookAllowUnsigned bool
	InsecureSkipVerify   bool
	AllowInsecureHTTP    bool
	// History is the lock history's file: --history, MDMCTL_HISTORY, or
	// $XDG_STATE_HOME/mdmctl/history.db; "" when there is no home to put it in.
	History string
	// Preflight is how long a lock waits for the devices' DeviceInformation
	// answers; 0 means no preflight.
	Preflight time.Duration
	// Warnings are problems worth telling the user that do not stop the run
	// (a key file readable by others).
	Warnings []string
}

// Source is where settings come from besides the file: the process
// environment and the command's flags.
type Source struct {
	Getenv func(string) string
	Flags  *pflag.FlagSet
	// ContextFlag is the --context value ("" when not given).
	ContextFlag string
}

// plainKeys are resolved by viper from flag, env, then the context.
var plainKeys = []string{"server", "kind", "api-user", "tenant", "api-key-file", "ca-file",
	"client-cert-file", "client-key-file", "webhook-listen", "webhook-hmac-key-file", "webhook-allow-unsigned",
	"insecure-skip-verify", "allow-insecure-http", "preflight", "pin-escrow-recipient", "history"}

// Resolve picks the context (--context, MDMCTL_CONTEXT, current-context) and
// layers flags and environment over it.
func Resolve(f *File, src Source) (Settings, error) {
	name := src.ContextFlag
	if name == "" {
		name = src.Getenv(EnvContext)
	}
	if name == "" {
		name = f.CurrentContext
	}
	var ctx Context
	if name != "" {
		c, ok := f.Contexts[name]
		switch {
		case ok:
			ctx = c
		case IsBuiltinContext(name):
			ctx = Context{Kind: name}
		default:
			if near := suggest.Closest(name, append(f.ContextNames(), BuiltinContexts()...)); near != "" {
				return Settings{}, fmt.Errorf("unknown context %q: did you mean %q? (see mdmctl config get-contexts)", name, near)
			}
			return Settings{}, fmt.Errorf("unknown context %q (see mdmctl config get-contexts)", name)
		}
	}

	v := viper.New()
	v.SetEnvPrefix("MDMCTL")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	// Environment values come through src.Getenv so tests need not touch the
	// process environment; they override the context, and changed flags override both.
	defaults := map[string]any{
		"server": ctx.Server, "kind": ctx.Kind, "api-user": ctx.APIUser, "tenant": ctx.Tenant, "api-key-file": ctx.APIKeyFile,
		"ca-file": ctx.CAFile, "client-cert-file": ctx.ClientCertFile, "client-key-file": ctx.ClientKeyFile,
		"webhook-listen": ctx.WebhookListen, "webhook-hmac-key-file": ctx.WebhookHMACKeyFile,
		"pin-escrow-recipient": ctx.PINEscrowRecipient,
		"preflight":            ctx.Preflight,
	}
	for _, k := range plainKeys {
		if d, ok := defaults[k]; ok {
			v.SetDefault(k, d)
		}
		envName := "MDMCTL_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		if val := src.Getenv(envName); val != "" {
			v.SetDefault(k, val)
		}
		if src.Flags != nil {
			if fl := src.Flags.Lookup(k); fl != nil && fl.Changed {
				if err := v.BindPFlag(k, fl); err != nil {
					return Settings{}, err
				}
			}
		}
	}

	s := Settings{
		Context:              name,
		Server:               v.GetString("server"),
		Kind:                 v.GetString("kind"),
		APIUser:              v.GetString("api-user"),
		Tenant:               v.GetString("tenant"),
		CAFile:               v.GetString("ca-file"),
		ClientCertFile:       v.GetString("client-cert-file"),
		ClientKeyFile:        v.GetString("client-key-file"),
		WebhookListen:        v.GetString("webhook-listen"),
		PINEscrowRecipient:   v.GetString("pin-escrow-recipient"),
		InsecureSkipVerify:   v.GetBool("insecure-skip-verify"),
		WebhookAllowUnsigned: v.GetBool("webhook-allow-unsigned"),
		AllowInsecureHTTP:    v.GetBool("allow-insecure-http"),
		History:              v.GetString("history"),
	}
	if s.History == "" {
		if state, err := StateHome(src.Getenv); err == nil {
			s.History = filepath.Join(state, "mdmctl", "history.db")
		}
	}
	if s.Kind == "" {
		s.Kind = server.DefaultKind()
	}
	if err := ValidateKind(s.Kind); err != nil {
		return Settings{}, err
	}
	if d, _ := server.Lookup(s.Kind); s.Server == "" {
		s.Server = d.DefaultURL
	}
	if s.Server != "" {
		if _, err := ValidateServerURL(s.Kind, s.Server); err != nil {
			return Settings{}, err
		}
	}
	var err error
	if s.Preflight, err = resolvePreflight(v.GetString("preflight"), s.Kind); err != nil {
		return Settings{}, err
	}

	if s.APIKey, err = resolveSecret(&s, src, "API key", EnvAPIKey, v.GetString("api-key-file"),
		flagChanged(src.Flags, "api-key-file"), ctx.APIKey); err != nil {
		return Settings{}, err
	}
	if s.WebhookHMACKey, err = resolveSecret(&s, src, "webhook HMAC key", EnvWebhookHMACKey,
		v.GetString("webhook-hmac-key-file"), flagChanged(src.Flags, "webhook-hmac-key-file"), ""); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// resolvePreflight reads a preflight duration; unset means the kind's
// default (off, except where devices answer at once: the sandbox).
func resolvePreflight(value, kind string) (time.Duration, error) {
	if value == "" {
		d, _ := server.Lookup(kind)
		return d.Preflight, nil
	}
	d, err := ParsePreflight(value)
	if err != nil {
		return 0, fmt.Errorf("invalid preflight %q: %v", value, err)
	}
	return d, nil
}

// ParsePreflight accepts a duration of 0 or more ("30s", "2m", "0").
func ParsePreflight(value string) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil {
		return 0, errors.New("want a duration such as 30s, or 0 for none")
	}
	if d < 0 {
		return 0, errors.New("must not be negative")
	}
	return d, nil
}

func flagChanged(fs *pflag.FlagSet, name string) bool {
	if fs == nil {
		return false
	}
	fl := fs.Lookup(name)
	return fl != nil && fl.Changed
}

// resolveSecret applies: --*-file flag > env value > file from env or
// context > inline value in the context.
func resolveSecret(s *Settings, src Source, what, envName, file string, fileFromFlag bool, inline string) (string, error) {
	if !fileFromFlag {
		if val := src.Getenv(envName); val != "" {
			return val, nil
		}
	}
	if file != "" {
		return ReadSecretFile(s, what, file)
	}
	return inline, nil
}

// ReadSecretFile reads a one-line secret, trimming surrounding whitespace,
// and warns (through s.Warnings) when others can read it.
func ReadSecretFile(s *Settings, what, path string) (string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s file %s: %v", what, path, describeFSError(err))
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("%s file %s: not a regular file", what, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s file %s: %v", what, path, describeFSError(err))
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("%s file %s is empty", what, path)
	}
	if strings.ContainsAny(secret, "\r\n") {
		return "", fmt.Errorf("%s file %s has more than one line", what, path)
	}
	// Like ssh with a private key: readable by everyone is refused, readable
	// by the group is worth a warning.
	if info.Mode().Perm()&0o004 != 0 {
		return "", fmt.Errorf("%s file %s is readable by everyone (mode %04o); run chmod 600 %s", what, path, info.Mode().Perm(), path)
	}
	if info.Mode().Perm()&0o070 != 0 && s != nil {
		s.Warnings = append(s.Warnings, fmt.Sprintf("%s file %s is readable by its group (mode %04o); run chmod 600 %s",
			what, path, info.Mode().Perm(), path))
	}
	return secret, nil
}

func describeFSError(err error) string {
	switch {
	case os.IsNotExist(err):
		return "no such file"
	case os.IsPermission(err):
		return "permission denied"
	}
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// StateHome is where mdmctl keeps state (run journals, the lock history):
// $XDG_STATE_HOME, else ~/.local/state.
func StateHome(getenv func(string) string) (string, error) {
	if state := getenv("XDG_STATE_HOME"); state != "" {
		return state, nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", err
		}
	}
	return filepath.Join(home, ".local", "state"), nil
}
