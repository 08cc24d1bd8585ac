package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/iostreams"
)

// Every script runs with these known secrets: the API keys its servers use,
// the webhook keys and the PINs it passes. runWatchingSecrets fails the
// suite if any of them (or a Basic auth header made from a key) shows up in
// anything mdmctl prints.
var scriptSecrets = []string{
	"nanomdm-test-key", "counting-key", "micromdm-test-key", "fleet-test-token", "fault-key", "bad-input-key",
	"s3cr3t-prod-key", "hook-secret", "wrong-secret", "wrong-key",
	"482913", "246810", "url-s3cret",
}

const (
	envSecrets  = "MDMCTL_TEST_SECRETS"
	envLeakFile = "MDMCTL_TEST_LEAKS"
)

func secretForms(secrets []string) []string {
	forms := slices.Clone(secrets)
	for _, s := range secrets {
		// Basic auth as NanoMDM and MicroMDM send it, and with the key as
		// the user and no password (SimpleMDM).
		forms = append(forms, base64.StdEncoding.EncodeToString([]byte(s+":")))
		for _, user := range []string{"nanomdm", "micromdm"} {
			forms = append(forms, base64.StdEncoding.EncodeToString([]byte(user+":"+s)))
		}
	}
	return forms
}

// runWatchingSecrets runs mdmctl with its stdout and stderr copied to a
// scanner. --show-pins runs may print PINs, never keys.
func runWatchingSecrets() int {
	streams := iostreams.System()
	args := os.Args[1:]
	secrets := strings.Split(os.Getenv(envSecrets), ",")
	if os.Getenv(envSecrets) == "" {
		return run(streams, args, os.Getenv)
	}
	if slices.Contains(args, "--show-pins") {
		secrets = slices.DeleteFunc(secrets, func(s string) bool { return strings.Trim(s, "0123456789") == "" })
	}
	var captured lockedBuffer
	streams.Out = io.MultiWriter(streams.Out, &captured)
	streams.ErrOut = io.MultiWriter(streams.ErrOut, &captured)
	code := run(streams, args, os.Getenv)
	for _, s := range secretForms(secrets) {
		if s != "" && captured.contains(s) {
			recordLeak(fmt.Sprintf("%q printed by: %s", s, strings.Join(args, " ")))
		}
	}
	return code
}

// lockedBuffer collects both streams, written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.buf.Bytes(), []byte(s))
}

func recordLeak(line string) {
	f, err := os.OpenFile(os.Getenv(envLeakFile), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

// checkNoLeaks fails t if any script's mdmctl printed a secret.
func checkNoLeaks(t *testing.T, leakFile string) {
	data, err := os.ReadFile(leakFile)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(data) > 0 {
		t.Errorf("secrets leaked into mdmctl's output:\n%s", data)
	}
}

// TestLeakDetectorCatches proves the watcher is not blind: a value mdmctl
// does print, declared secret, is reported.
func TestLeakDetectorCatches(t *testing.T) {
	bin := mdmctlBinary(t)
	dir := t.TempDir()
	leaks := dir + "/leaks"
	cmd := exec.Command(bin, "lock", "--dry-run", "--udid", "A", "--platform", "ios", "--message", "canary-7731")
	cmd.Env = append(cleanEnv(dir), envSecrets+"=canary-7731", envLeakFile+"="+leaks)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	data, err := os.ReadFile(leaks)
	if err != nil || !strings.Contains(string(data), `"canary-7731" printed by: lock --dry-run`) {
		t.Fatalf("leak not recorded: %q, %v", data, err)
	}
}
