// Package config reads and writes mdmctl's config file of named contexts and
// resolves the settings of one run: flag > environment > context > default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/mdmctl/mdmctl/internal/redact"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// BuiltinContexts are the contexts that need no configuration: one per
// in-process kind (the sandbox), named after it.
func BuiltinContexts() []string {
	var names []string
	for _, k := range server.Kinds() {
		if d, _ := server.Lookup(k); d.InProcess {
			names = append(names, k)
		}
	}
	return names
}

// IsBuiltinContext reports whether name is a built-in context.
func IsBuiltinContext(name string) bool {
	d, ok := server.Lookup(name)
	return ok && d.InProcess
}

// Context is one named server in the config file. APIKey is allowed here
// (the file is 0600) but api-key-file is preferred.
type Context struct {
	Server  string `yaml:"server,omitempty" mapstructure:"server" json:"server,omitempty"`
	Kind    string `yaml:"kind,omitempty" mapstructure:"kind" json:"kind,omitempty"`
	APIUser string `yaml:"api-user,omitempty" mapstructure:"api-user" json:"api_user,omitempty"`
	// Tenant is the directory an OAuth client belongs to (an Entra ID
	// tenant ID or domain), for kinds whose token endpoint is per tenant.
	Tenant             string `yaml:"tenant,omitempty" mapstructure:"tenant" json:"tenant,omitempty"`
	APIKey             string `yaml:"api-key,omitempty" mapstructure:"api-key" json:"api_key,omitempty"`
	APIKeyFile         string `yaml:"api-key-file,omitempty" mapstructure:"api-key-file" json:"api_key_file,omitempty"`
	CAFile             string `yaml:"ca-file,omitempty" mapstructure:"ca-file" json:"ca_file,omitempty"`
	ClientCertFile     string `yaml:"client-cert-file,omitempty" mapstructure:"client-cert-file" json:"client_cert_file,omitempty"`
	ClientKeyFile      string `yaml:"client-key-file,omitempty" mapstructure:"client-key-file" json:"client_key_file,omitempty"`
	WebhookListen      string `yaml:"webhook-listen,omitempty" mapstructure:"webhook-listen" json:"webhook_listen,omitempty"`
	WebhookHMACKeyFile string `yaml:"webhook-hmac-key-file,omitempty" mapstructure:"webhook-hmac-key-file" json:"webhook_hmac_key_file,omitempty"`
	// PINEscrowRecipient is an age public key, or a recipients file, that
	// generated PINs are encrypted to in the escrow file.
	PINEscrowRecipient string `yaml:"pin-escrow-recipient,omitempty" mapstructure:"pin-escrow-recipient" json:"pin_escrow_recipient,omitempty"`
	// Preflight is how long `lock` waits for DeviceInformation answers
	// before locking ("30s"; "0" turns it off), as --preflight=DURATION.
	Preflight string `yaml:"preflight,omitempty" mapstructure:"preflight" json:"preflight,omitempty"`
}

// File is the whole config file.
type File struct {
	CurrentContext string             `yaml:"current-context,omitempty" mapstructure:"current-context" json:"current_context,omitempty"`
	Contexts       map[string]Context `yaml:"contexts,omitempty" mapstructure:"contexts" json:"contexts,omitempty"`
}

// Context names are lowercase because viper folds keys to lowercase, and
// free of dots because viper reads a dot as nesting.
var contextNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidateContextName rejects names the config file cannot hold faithfully.
func ValidateContextName(name string) error {
	if !contextNameRE.MatchString(name) {
		return fmt.Errorf("invalid context name %q (use lowercase letters, digits, - and _)", name)
	}
	return nil
}

// ValidateKind rejects a kind no driver registered.
func ValidateKind(kind string) error {
	if _, ok := server.Lookup(kind); ok {
		return nil
	}
	return fmt.Errorf("unknown server kind %q (want one of %s)", kind, strings.Join(server.Kinds(), ", "))
}

// ValidateServerURL accepts an absolute http(s) URL without credentials,
// query or fragment; a path prefix (NanoHUB's /api/v1/nanomdm) is kept. The
// raw kind's URL is a template that may carry {udid} and a query. Its
// errors show the URL with any user and password redacted.
func ValidateServerURL(kind, raw string) (*url.URL, error) {
	shown := redact.URL(raw)
	u, err := url.Parse(raw)
	switch {
	case shown != raw:
		// Refused, not used: a key in the URL lands in shell history, and
		// the config file and process listings would show it. Checked
		// first: Go's parse error ("invalid port \":S3CRET\"") can quote
		// the password.
		return nil, fmt.Errorf("invalid server URL %q: credentials belong in an API key file, not the URL (use --api-key-file or MDMCTL_API_KEY, and --api-user for the user)", shown)
	case err != nil:
		return nil, fmt.Errorf("invalid server URL %q: %v", raw, errors.Unwrap(err))
	case u.Scheme == "" || (u.Host == "" && u.Opaque != ""):
		// "mdm.example.com" parses as a path, "mdm.example.com:8443" as scheme and opaque.
		return nil, fmt.Errorf("invalid server URL %q: add https://, as in https://%s", shown, shown)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("invalid server URL %q: scheme must be http or https", shown)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("invalid server URL %q: no host", shown)
	case u.Fragment != "" || (u.RawQuery != "" && !takesQuery(kind)):
		return nil, fmt.Errorf("invalid server URL %q: no query or fragment allowed", shown)
	}
	return u, nil
}

func takesQuery(kind string) bool {
	d, _ := server.Lookup(kind)
	return d.URLQuery
}

// DefaultPath is $XDG_CONFIG_HOME/mdmctl/config.yaml, else ~/.config/mdmctl/config.yaml.
func DefaultPath(getenv func(string) string) string {
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "mdmctl", "config.yaml")
	}
	if home := getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "mdmctl", "config.yaml")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".config", "mdmctl", "config.yaml")
	}
	return filepath.Join(".config", "mdmctl", "config.yaml")
}

// Load reads the config file at path; a missing file is an empty config.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &File{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	if err := caseCollision(data); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	var f File
	if err := v.UnmarshalExact(&f); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	for name := range f.Contexts {
		if err := ValidateContextName(name); err != nil {
			return nil, fmt.Errorf("config file %s: %v", path, err)
		}
	}
	return &f, nil
}

// caseCollision refuses context names that differ only in case. Viper
// folds keys to lowercase, so "Prod" and "prod" would silently merge into
// one context and a lock could go to the other one's server: the names are
// read from the YAML itself, before viper sees them. A file that is not
// YAML is left to viper to report.
func caseCollision(data []byte) error {
	var raw struct {
		Contexts map[string]yaml.Node `yaml:"contexts"`
	}
	if yaml.Unmarshal(data, &raw) != nil {
		return nil
	}
	names := make([]string, 0, len(raw.Contexts))
	for name := range raw.Contexts {
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, name := range names {
		folded := strings.ToLower(name)
		if other, ok := seen[folded]; ok {
			return fmt.Errorf("contexts %q and %q differ only in case, and mdmctl reads them as one: rename or delete one", other, name)
		}
		seen[folded] = name
	}
	return nil
}

// Save writes the file atomically with mode 0600: it may hold an API key.
func (f *File) Save(path string) error {
	data, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating config directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.yaml")
	if err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing config file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	return nil
}

// ContextNames returns the context names, sorted.
func (f *File) ContextNames() []string {
	names := make([]string, 0, len(f.Contexts))
	for n := range f.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Redacted returns a copy safe to print: inline API keys are replaced, and
// so are a user and password written into a server URL by hand.
func (f *File) Redacted() *File {
	out := &File{CurrentContext: f.CurrentContext}
	if f.Contexts != nil {
		out.Contexts = make(map[string]Context, len(f.Contexts))
	}
	for n, c := range f.Contexts {
		if c.APIKey != "" {
			c.APIKey = Redacted
		}
		c.Server = redact.URL(c.Server)
		out.Contexts[n] = c
	}
	return out
}

// Redacted stands in for a secret wherever one would be printed.
const Redacted = "REDACTED"

// PermissionWarning says when the file at path, which can hold API keys,
// is readable by group or others; "" when it is private or missing.
func PermissionWarning(path string) string {
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("config file %s is readable by group or others (mode %04o); run chmod 600 %s", path, info.Mode().Perm(), path)
}
