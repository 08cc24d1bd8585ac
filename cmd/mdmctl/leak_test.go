package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
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
		for _, user := range []string{"nanomdm", "micromdm"} {
			forms = append(forms, base64.StdEncoding.EncodeToString([]byte(user+":"+s)))
		}
	}
	return forms
}

// runWatchingSecrets runs mdmctl with its stdout and stderr passed through
// a scanner. --show-pins runs may print PINs, never keys.
func runWatchingSecrets() int {
	secrets := strings.Split(os.Getenv(envSecrets), ",")
	if os.Getenv(envSecrets) == "" {
		return run()
	}
	if slices.Contains(os.Args, "--show-pins") {
		secrets = slices.DeleteFunc(secrets, func(s string) bool { return strings.Trim(s, "0123456789") == "" })
	}
	var captured bytes.Buffer
	var mu sync.Mutex
	var wg sync.WaitGroup
	tee := func(real *os.File) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			panic(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					_, _ = real.Write(buf[:n])
					mu.Lock()
					captured.Write(buf[:n])
					mu.Unlock()
				}
				if err != nil {
					return
				}
			}
		}()
		return w
	}
	realOut, realErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = tee(realOut), tee(realErr)
	code := run()
	os.Stdout.Close()
	os.Stderr.Close()
	wg.Wait()
	os.Stdout, os.Stderr = realOut, realErr
	for _, s := range secretForms(secrets) {
		if s != "" && bytes.Contains(captured.Bytes(), []byte(s)) {
			recordLeak(fmt.Sprintf("%q printed by: %s", s, strings.Join(os.Args[1:], " ")))
		}
	}
	return code
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
