package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdmctl/mdmctl/pkg/server/micromdm"
	"github.com/mdmctl/mdmctl/pkg/server/nanomdm"
	"github.com/mdmctl/mdmctl/pkg/server/raw"
	"github.com/mdmctl/mdmctl/pkg/server/sandboxkind"
	"github.com/mdmctl/mdmctl/pkg/server/simplemdm"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func flags(t *testing.T, set map[string]string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	for _, k := range []string{"server", "kind", "api-user", "api-key-file", "ca-file", "webhook-listen", "webhook-hmac-key-file"} {
		fs.String(k, "", "")
	}
	for k, v := range set {
		if err := fs.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	return fs
}

func writeKey(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestResolvePrecedence(t *testing.T) {
	dir := t.TempDir()
	ctxKey := writeKey(t, dir, "ctx.key", "from-context-file\n")
	flagKey := writeKey(t, dir, "flag.key", "from-flag-file")
	file := &File{CurrentContext: "prod", Contexts: map[string]Context{
		"prod":    {Server: "https://prod.example.com", APIKeyFile: ctxKey, WebhookListen: "127.0.0.1:9001"},
		"staging": {Server: "https://staging.example.com", Kind: micromdm.Kind, APIKey: "inline-key"},
	}}
	tests := []struct {
		name                    string
		env                     map[string]string
		flags                   map[string]string
		ctxFlag                 string
		server, kind, key, hook string
	}{
		{"context only", nil, nil, "", "https://prod.example.com", nanomdm.Kind, "from-context-file", "127.0.0.1:9001"},
		{"env over context", map[string]string{EnvServer: "https://env.example.com", EnvAPIKey: "from-env"}, nil, "", "https://env.example.com", nanomdm.Kind, "from-env", "127.0.0.1:9001"},
		{"flag over env", map[string]string{EnvServer: "https://env.example.com", EnvAPIKey: "from-env"}, map[string]string{"server": "https://flag.example.com", "api-key-file": flagKey}, "", "https://flag.example.com", nanomdm.Kind, "from-flag-file", "127.0.0.1:9001"},
		{"env context", map[string]string{EnvContext: "staging"}, nil, "", "https://staging.example.com", micromdm.Kind, "inline-key", ""},
		{"flag context over env", map[string]string{EnvContext: "staging"}, nil, "prod", "https://prod.example.com", nanomdm.Kind, "from-context-file", "127.0.0.1:9001"},
		{"built-in sandbox", nil, nil, "sandbox", "", sandboxkind.Kind, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Resolve(file, Source{Getenv: env(tt.env), Flags: flags(t, tt.flags), ContextFlag: tt.ctxFlag})
			if err != nil {
				t.Fatal(err)
			}
			if s.Server != tt.server || s.Kind != tt.kind || s.APIKey != tt.key || s.WebhookListen != tt.hook {
				t.Errorf("got server %q kind %q key %q hook %q", s.Server, s.Kind, s.APIKey, s.WebhookListen)
			}
		})
	}
	if _, err := Resolve(file, Source{Getenv: env(nil), ContextFlag: "nope"}); err == nil || !strings.Contains(err.Error(), `unknown context "nope"`) {
		t.Errorf("unknown context: %v", err)
	}
}

func TestSaveIsPrivateAndRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "config.yaml")
	f := &File{CurrentContext: "a", Contexts: map[string]Context{"a": {Server: "https://a", APIKey: "k"}}}
	if err := f.Save(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", info.Mode(), err)
	}
	back, err := Load(path)
	if err != nil || back.Contexts["a"].APIKey != "k" || back.CurrentContext != "a" {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if red := back.Redacted(); red.Contexts["a"].APIKey != Redacted || back.Contexts["a"].APIKey != "k" {
		t.Errorf("Redacted must copy: %+v / %+v", red, back)
	}
	if w := PermissionWarning(path); w != "" {
		t.Errorf("private file warned about: %s", w)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if w := PermissionWarning(path); !strings.Contains(w, "readable by group or others") {
		t.Errorf("open file not warned about: %q", w)
	}
	missing, err := Load(filepath.Join(t.TempDir(), "none.yaml"))
	if err != nil || len(missing.Contexts) != 0 {
		t.Errorf("a missing file is an empty config: %+v, %v", missing, err)
	}
}

func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	group := writeKey(t, dir, "group.key", "k")
	if err := os.Chmod(group, 0o640); err != nil {
		t.Fatal(err)
	}
	var s Settings
	if v, err := ReadSecretFile(&s, "API key", group); err != nil || v != "k" || len(s.Warnings) != 1 {
		t.Errorf("group-readable: %q %v %v", v, err, s.Warnings)
	}
	world := writeKey(t, dir, "world.key", "k")
	if err := os.Chmod(world, 0o604); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(&s, "API key", world); err == nil || !strings.Contains(err.Error(), "readable by everyone") {
		t.Errorf("world-readable: %v", err)
	}
	for content, want := range map[string]string{"\n \n": "is empty", "a\nb": "more than one line"} {
		p := writeKey(t, dir, "bad.key", content)
		if _, err := ReadSecretFile(nil, "API key", p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v", content, err)
		}
	}
}

func TestValidation(t *testing.T) {
	for _, name := range []string{"prod", "eu-1", "a_b"} {
		if err := ValidateContextName(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"", "Prod", "a.b", "-x", "a b"} {
		if err := ValidateContextName(name); err == nil {
			t.Errorf("%q accepted", name)
		}
	}
	if _, err := ValidateServerURL(raw.Kind, "https://h/raw/{udid}?x=1"); err != nil {
		t.Errorf("raw template: %v", err)
	}
	if _, err := ValidateServerURL(nanomdm.Kind, "https://h/?x=1"); err == nil {
		t.Error("a query in a NanoMDM URL accepted")
	}
}

func TestResolvePreflight(t *testing.T) {
	file := &File{Contexts: map[string]Context{
		"asks":  {Server: "https://a.example.com", APIKey: "k", Preflight: "45s"},
		"plain": {Server: "https://p.example.com", APIKey: "k"},
		"bad":   {Server: "https://b.example.com", APIKey: "k", Preflight: "soon"},
	}}
	durationFlag := func(v string) *pflag.FlagSet {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.Duration("preflight", 0, "")
		if v != "" {
			if err := fs.Set("preflight", v); err != nil {
				t.Fatal(err)
			}
		}
		return fs
	}
	for _, tt := range []struct {
		ctx, env, flag string
		want           time.Duration
		err            string
	}{
		{"plain", "", "", 0, ""},
		{"asks", "", "", 45 * time.Second, ""},
		{"asks", "10s", "", 10 * time.Second, ""},
		{"asks", "10s", "0s", 0, ""},
		{"sandbox", "", "", sandboxkind.Preflight, ""},
		{"sandbox", "", "0s", 0, ""},
		{"bad", "", "", 0, `invalid preflight "soon"`},
		{"plain", "-1s", "", 0, "must not be negative"},
	} {
		s, err := Resolve(file, Source{Getenv: env(map[string]string{"MDMCTL_PREFLIGHT": tt.env}), Flags: durationFlag(tt.flag), ContextFlag: tt.ctx})
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s env=%q flag=%q: err %v, want %q", tt.ctx, tt.env, tt.flag, err, tt.err)
		case tt.err == "" && err != nil:
			t.Errorf("%s env=%q flag=%q: %v", tt.ctx, tt.env, tt.flag, err)
		case tt.err == "" && s.Preflight != tt.want:
			t.Errorf("%s env=%q flag=%q: preflight %s, want %s", tt.ctx, tt.env, tt.flag, s.Preflight, tt.want)
		}
	}
}

// The escrow recipient is public and plain: flag over environment over context.
func TestResolvePINEscrowRecipient(t *testing.T) {
	file := &File{CurrentContext: "ci", Contexts: map[string]Context{"ci": {Server: "https://ci.example.com", PINEscrowRecipient: "from-context.txt"}}}
	fs := flags(t, nil)
	fs.String("pin-escrow-recipient", "", "")
	for _, tt := range []struct {
		env  map[string]string
		flag string
		want string
	}{
		{nil, "", "from-context.txt"},
		{map[string]string{"MDMCTL_PIN_ESCROW_RECIPIENT": "age1fromenv"}, "", "age1fromenv"},
		{map[string]string{"MDMCTL_PIN_ESCROW_RECIPIENT": "age1fromenv"}, "age1fromflag", "age1fromflag"},
	} {
		if tt.flag != "" {
			if err := fs.Set("pin-escrow-recipient", tt.flag); err != nil {
				t.Fatal(err)
			}
		}
		s, err := Resolve(file, Source{Getenv: env(tt.env), Flags: fs})
		if err != nil {
			t.Fatal(err)
		}
		if s.PINEscrowRecipient != tt.want {
			t.Errorf("env %v flag %q: recipient %q, want %q", tt.env, tt.flag, s.PINEscrowRecipient, tt.want)
		}
	}
}

// TestKindDefaultURL: a hosted kind's own API host stands in for a server
// URL nobody configured, and never over one that is.
func TestKindDefaultURL(t *testing.T) {
	s, err := Resolve(&File{}, Source{Getenv: env(map[string]string{"MDMCTL_KIND": simplemdm.Kind})})
	if err != nil || s.Server != "https://a.simplemdm.com" {
		t.Fatalf("server %q, err %v", s.Server, err)
	}
	s, err = Resolve(&File{}, Source{Getenv: env(map[string]string{"MDMCTL_KIND": simplemdm.Kind, EnvServer: "https://proxy.example.com"})})
	if err != nil || s.Server != "https://proxy.example.com" {
		t.Fatalf("server %q, err %v", s.Server, err)
	}
	if s, err := Resolve(&File{}, Source{Getenv: env(nil)}); err != nil || s.Server != "" {
		t.Fatalf("NanoMDM has no default URL: server %q, err %v", s.Server, err)
	}
}
