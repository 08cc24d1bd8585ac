package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestBadInput runs mdmctl with hostile input from every source: flags,
// environment, config files, key files, ID lists and CSV. Each must exit 2
// with one line naming the input, and no request may reach the server.
func TestBadInput(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "must not be reached", 500)
	}))
	defer srv.Close()
	bin := mdmctlBinary(t)

	lock := []string{"lock", "--udid", "A", "--platform", "ios", "--no-push"}
	with := func(extra ...string) []string { return append(append([]string(nil), lock...), extra...) }
	huge := strings.Repeat("X", 70<<10)
	tests := []struct {
		name  string
		args  []string
		env   []string
		files map[string]string // name -> content; a name ending in / is a directory
		modes map[string]os.FileMode
		want  string
	}{
		// Flags.
		{name: "PIN too short", args: with("--pin", "12345"), want: "invalid PIN from --pin: must be exactly six digits 0-9"},
		{name: "PIN too long", args: with("--pin", "1234567"), want: "invalid PIN from --pin"},
		{name: "PIN with a letter", args: with("--pin", "12345a"), want: "must be exactly six digits 0-9"},
		{name: "PIN in Arabic-Indic digits", args: with("--pin", "١٢٣٤٥٦"), want: "invalid PIN"},
		{name: "PIN in fullwidth digits", args: with("--pin", "１２３４５６"), want: "invalid PIN"},
		{name: "PIN with a space", args: with("--pin", " 12345"), want: "invalid PIN"},
		{name: "PIN and --pin-generate", args: with("--pin", "123456", "--pin-generate", "--pin-escrow", "e"), want: "conflicts with --pin-generate"},
		{name: "message with BEL", args: with("--message", "a\ab"), want: "invalid --message: contains control character U+0007"},
		{name: "message with ESC", args: with("--message", "a\x1b[31mb"), want: "invalid --message: contains control character U+001B"},
		{name: "message not UTF-8", args: with("--message", "\xff\xfe"), want: "invalid --message: is not valid UTF-8"},
		{name: "message too long", args: with("--message", strings.Repeat("m", 2000)), want: "invalid --message: is longer than 1024 bytes"},
		{name: "phone with newline", args: with("--phone", "408\n555"), want: "invalid --phone: contains control character U+000A"},
		{name: "ID with space", args: []string{"lock", "--udid", "a b"}, want: `invalid target: target ID "a b" contains whitespace`},
		{name: "ID with slash", args: []string{"lock", "--udid", "a/b"}, want: `contains '/'`},
		{name: "ID with question mark", args: []string{"lock", "a?b"}, want: `contains '?'`},
		{name: "ID with hash", args: []string{"lock", "a#b"}, want: `contains '#'`},
		{name: "ID with percent", args: []string{"lock", "a%2Fb"}, want: `contains '%'`},
		{name: "empty ID", args: []string{"lock", "--udid", "A,,B"}, want: "target ID is empty"},
		{name: "ID not UTF-8", args: []string{"lock", "\xffID"}, want: "is not valid UTF-8"},
		{name: "no target", args: []string{"lock", "--platform", "ios"}, want: "no target"},
		{name: "bad OS version", args: with("--os-version", "11.4.x"), want: "invalid --os-version"},
		{name: "OS version in Arabic digits", args: with("--os-version", "١١.٤"), want: "invalid --os-version"},
		{name: "unknown platform", args: []string{"lock", "--udid", "A", "--platform", "tvos"}, want: `invalid --platform: unknown platform "tvos"`},
		{name: "model with space", args: with("--model", "Mac Book"), want: "invalid --model"},
		{name: "Mac model on iOS", args: with("--model", "MacBookAir10,1"), want: "conflicting device facts: model MacBookAir10,1 is a macos device, not ios"},
		{name: "zero concurrency", args: with("--concurrency", "0"), want: "invalid --concurrency 0"},
		{name: "negative retries", args: with("--retries", "-1"), want: "invalid --retries -1"},
		{name: "zero timeout", args: with("--timeout", "0s"), want: "invalid --timeout 0s"},
		{name: "bad duration", args: with("--timeout", "soon"), want: `invalid argument "soon" for "--timeout"`},
		{name: "bad wait", args: with("--wait=later"), want: `invalid argument "later" for "--wait"`},
		{name: "unknown output", args: with("-o", "yaml"), want: `invalid --output: unknown output format "yaml"`},
		{name: "command UUID with spaces", args: with("--command-uuid", " X "), want: "invalid --command-uuid"},
		{name: "pin-generate without escrow", args: with("--pin-generate"), want: "--pin-generate needs --pin-escrow"},
		{name: "escrow without pin-generate", args: with("--pin-escrow", "e"), want: "--pin-escrow goes with --pin-generate"},
		{name: "two devices, no --yes", args: []string{"lock", "A", "B", "--platform", "ios"}, want: "locking 2 devices needs --yes"},
		{name: "unknown flag", args: with("--frobnicate"), want: "unknown flag: --frobnicate"},
		{name: "stdin twice", args: []string{"lock", "-", "-"}, want: "stdin (-) given twice"},
		{name: "bad escrow recipient", args: with("--pin-generate", "--pin-escrow", "e", "--pin-escrow-recipient", "age1notakey"), want: `PIN escrow recipient "age1notakey" is not a valid age public key`},
		{name: "identity without resume", args: with("--identity", "key.txt"), want: "--identity goes with --resume"},
		// Environment.
		{name: "env PIN too short", args: lock, env: []string{"MDMCTL_PIN=12345"}, want: "invalid PIN from MDMCTL_PIN"},
		{name: "env unknown context", args: lock, env: []string{"MDMCTL_CONTEXT=nosuch"}, want: `unknown context "nosuch"`},
		{name: "env ftp server", args: lock, env: []string{"MDMCTL_SERVER=ftp://mdm.example.com"}, want: "scheme must be http or https"},
		{name: "env server with credentials", args: lock, env: []string{"MDMCTL_SERVER=https://user:pw@mdm.example.com"}, want: "credentials belong in an API key file"},
		{name: "env unknown kind", args: lock, env: []string{"MDMCTL_KIND=no-such-kind"}, want: `unknown server kind "no-such-kind"`},
		{name: "env missing recipients file", args: with("--pin-generate", "--pin-escrow", "e"), env: []string{"MDMCTL_PIN_ESCROW_RECIPIENT=missing.txt"}, want: `PIN escrow recipient "missing.txt" is neither an age public key`},
		{name: "env missing key file", args: lock, env: []string{"MDMCTL_API_KEY=", "MDMCTL_API_KEY_FILE=missing.key"}, want: "API key file missing.key: no such file"},
		{name: "no API key", args: lock, env: []string{"MDMCTL_API_KEY="}, want: "no API key"},
		// URLs.
		{name: "plain http to another host", args: with("--server", "http://mdm.example.com"), want: "refusing to send credentials over plain http to http://mdm.example.com"},
		{name: "URL without host", args: with("--server", "https://"), want: "no host"},
		{name: "URL that is not one", args: with("--server", "::not a url"), want: "invalid server URL"},
		{name: "URL with credentials and a bad scheme", args: with("--server", "htps://nanomdm:S3CRET@mdm.example.com"), want: `invalid server URL "htps://REDACTED@mdm.example.com": credentials belong in an API key file`},
		{name: "URL with a password Go cannot parse", args: with("--server", "https://nanomdm:S3/CRET@mdm.example.com"), want: "use --api-key-file or MDMCTL_API_KEY"},
		{name: "URL with credentials, no scheme", args: with("--server", "nanomdm:S3CRET@mdm.example.com"), want: "credentials belong in an API key file"},
		{name: "URL with fragment", args: with("--server", "https://mdm.example.com/#x"), want: "no query or fragment"},
		{name: "unsigned webhook on every IPv4 interface", args: with("--wait=2s", "--webhook-listen", "0.0.0.0:9099"), want: "refusing unsigned webhook events on --webhook-listen 0.0.0.0:9099"},
		{name: "unsigned webhook with an empty host", args: with("--wait=2s", "--webhook-listen", ":9099"), want: "refusing unsigned webhook events on --webhook-listen :9099"},
		{name: "unsigned webhook on every IPv6 interface", args: with("--wait=2s", "--webhook-listen", "[::]:9099"), want: "or pass --webhook-allow-unsigned"},
		{name: "unsigned webhook on a LAN address", args: with("--wait=2s", "--webhook-listen", "192.168.1.5:9099"), want: "refusing unsigned webhook events"},
		{name: "webhook address without a port", args: with("--wait=2s", "--webhook-listen", "9099"), want: `invalid webhook listen address "9099"`},
		{name: "missing CA file", args: with("--ca-file", "nope.pem"), want: "CA file nope.pem: no such file or directory"},
		{name: "CA file without PEM", args: with("--ca-file", "ca.pem"), files: map[string]string{"ca.pem": "not pem"}, want: "CA file ca.pem holds no PEM certificate"},
		{name: "client cert without key", args: with("--client-cert-file", "c.pem"), want: "needs both --client-cert-file and --client-key-file"},
		// Config files and key files.
		{name: "config not YAML", args: lock, files: map[string]string{"cfg.yaml": "contexts: [\n"}, env: []string{"MDMCTL_CONFIG=cfg.yaml"}, want: "config file cfg.yaml"},
		{name: "config unknown key", args: lock, files: map[string]string{"cfg.yaml": "contexts:\n  prod:\n    sever: https://x\n"}, env: []string{"MDMCTL_CONFIG=cfg.yaml"}, want: "sever"},
		{name: "config contexts differing in case", args: lock, files: map[string]string{"cfg.yaml": "contexts:\n  Prod:\n    server: https://a.example.com\n  prod:\n    server: https://b.example.com\n"}, env: []string{"MDMCTL_CONFIG=cfg.yaml", "MDMCTL_CONTEXT=prod"}, want: `config file cfg.yaml: contexts "Prod" and "prod" differ only in case`},
		{name: "config current context missing", args: lock, files: map[string]string{"cfg.yaml": "current-context: gone\n"}, env: []string{"MDMCTL_CONFIG=cfg.yaml"}, want: `unknown context "gone"`},
		{name: "empty key file", args: with("--api-key-file", "k"), files: map[string]string{"k": "\n"}, want: "API key file k is empty"},
		{name: "two-line key file", args: with("--api-key-file", "k"), files: map[string]string{"k": "a\nb\n"}, want: "has more than one line"},
		{name: "key file is a directory", args: with("--api-key-file", "kdir"), files: map[string]string{"kdir/": ""}, want: "not a regular file"},
		{name: "recipients file of secret keys", args: with("--pin-generate", "--pin-escrow", "e", "--pin-escrow-recipient", "r.txt"), files: map[string]string{"r.txt": "AGE-SECRET-KEY-1QQQ\n"}, want: "PIN escrow recipients file r.txt: error at line 1: unknown recipient type"},
		{name: "world-readable key file", args: with("--api-key-file", "k"), files: map[string]string{"k": "secret-value-xyz\n"}, modes: map[string]os.FileMode{"k": 0o644}, want: "readable by everyone"},
		// ID lists and CSV.
		{name: "empty ID file", args: []string{"lock", "--udid-file", "ids.txt"}, files: map[string]string{"ids.txt": ""}, want: "no target"},
		{name: "huge line", args: []string{"lock", "--udid-file", "ids.txt"}, files: map[string]string{"ids.txt": "A\n" + huge + "\n"}, want: "ids.txt:2: line longer than 65536 bytes"},
		{name: "ID file not UTF-8", args: []string{"lock", "--udid-file", "ids.txt"}, files: map[string]string{"ids.txt": "A\nB\xff\n"}, want: "ids.txt:2: target ID"},
		{name: "ID file is a directory", args: []string{"lock", "--udid-file", "d"}, files: map[string]string{"d/": ""}, want: "invalid --udid-file d: is a directory"},
		{name: "CSV with an unknown column", args: []string{"lock", "--csv", "f.csv"}, files: map[string]string{"f.csv": "asset_tag\nX\n"}, want: `f.csv:1: unknown CSV column "asset_tag"`},
		{name: "CSV with no udid column", args: []string{"lock", "--csv", "f.csv"}, files: map[string]string{"f.csv": "model\nMac14,2\n"}, want: "CSV header has no udid column"},
		{name: "CSV short row", args: []string{"lock", "--csv", "f.csv"}, files: map[string]string{"f.csv": "udid,model\nA\n"}, want: "f.csv:2: has 1 fields, the header has 2"},
		{name: "CSV bad PIN", args: []string{"lock", "--csv", "f.csv"}, files: map[string]string{"f.csv": "udid,pin\nA,12345\n"}, want: "f.csv:2: invalid PIN: must be exactly six digits"},
		{name: "CSV bad platform", args: []string{"lock", "--csv", "f.csv"}, files: map[string]string{"f.csv": "udid,platform\nA,tvos\n"}, want: `f.csv:2: unknown platform "tvos"`},
		{name: "CSV empty", args: []string{"lock", "--csv", "f.csv"}, files: map[string]string{"f.csv": ""}, want: "f.csv:1: empty CSV file"},
		{name: "CSV bare quote", args: []string{"lock", "--csv", "f.csv"}, files: map[string]string{"f.csv": "udid\nA\"B\n"}, want: "f.csv:2:"},
	}
	if len(tests) < 40 {
		t.Fatalf("the table must hold at least 40 bad inputs, has %d", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(dir, name)
				if strings.HasSuffix(name, "/") {
					if err := os.Mkdir(p, 0o700); err != nil {
						t.Fatal(err)
					}
					continue
				}
				mode := os.FileMode(0o600)
				if m, ok := tt.modes[name]; ok {
					mode = m
				}
				if err := os.WriteFile(p, []byte(content), mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(p, mode); err != nil {
					t.Fatal(err)
				}
			}
			before := requests.Load()
			cmd := exec.Command(bin, tt.args...)
			cmd.Dir = dir
			cmd.Env = append(cleanEnv(dir), "MDMCTL_SERVER="+srv.URL, "MDMCTL_API_KEY=bad-input-key")
			cmd.Env = append(cmd.Env, tt.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit %v, want 2\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr = %q, want one line containing %q", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			for _, secret := range secretsOf(tt.args, tt.env) {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("output shows the secret %q", secret)
				}
			}
			if n := requests.Load() - before; n != 0 {
				t.Errorf("%d requests reached the server", n)
			}
		})
	}
}

// cleanEnv is the process environment without any MDMCTL_ setting, with
// HOME, XDG_CONFIG_HOME and XDG_STATE_HOME in dir so no user config is
// read and no journal or history written outside it.
func cleanEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MDMCTL_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") &&
			!strings.HasPrefix(kv, "XDG_STATE_HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_STATE_HOME="+dir, "NO_COLOR=1")
}

// secretsOf lists the secret values a bad-input row passes: the API key, any
// PIN (however malformed) and the key file contents used in the table.
func secretsOf(args, env []string) []string {
	secrets := []string{"bad-input-key", "secret-value-xyz", "AGE-SECRET-KEY", "S3CRET", "S3/CRET", "nanomdm:"}
	for i, a := range args {
		if a == "--pin" && i+1 < len(args) && strings.TrimSpace(args[i+1]) != "" {
			secrets = append(secrets, strings.TrimSpace(args[i+1]))
		}
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "MDMCTL_PIN="); ok && v != "" {
			secrets = append(secrets, v)
		}
	}
	return secrets
}
