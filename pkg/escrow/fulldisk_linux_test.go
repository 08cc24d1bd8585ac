package escrow

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"filippo.io/age"
)

// TestFullDiskLeavesNoTornRecord fills a real disk: a 64 KiB tmpfs mounted in
// a private mount namespace (so no mount outlives the test, even if it is
// killed), or, where mounting is not allowed, a file-size limit
// (RLIMIT_FSIZE) that fails writes the same way. Appends run until one
// fails; the file must then end at the last whole record, and once space is
// back the next record must land on its own line. Encrypted records, longer
// and written the same way, are held to the same.
func TestFullDiskLeavesNoTornRecord(t *testing.T) {
	for _, sealed := range []bool{false, true} {
		t.Run(map[bool]string{false: "clear", true: "encrypted"}[sealed], func(t *testing.T) {
			dir := t.TempDir()
			mode := "tmpfs"
			out, err := fullDiskChild(t, dir, mode, sealed)
			var exit *exec.ExitError
			if errors.Is(err, syscall.EPERM) || (errors.As(err, &exit) && exit.ExitCode() == exitNoMount) {
				mode = "rlimit"
				out, err = fullDiskChild(t, dir, mode, sealed)
			}
			if err != nil {
				t.Fatalf("full-disk child (%s): %v\n%s", mode, err, out)
			}
			t.Logf("%s: %s", mode, out)
			if !strings.Contains(string(out), "escrow ok") {
				t.Fatalf("child did not finish:\n%s", out)
			}
		})
	}
}

const (
	envFullDisk = "ESCROW_TEST_FULL_DISK"
	// envSealed makes the child encrypt its records to a key of its own.
	envSealed = "ESCROW_TEST_SEALED"
)

// exitNoMount is the child's exit code when it may not mount a tmpfs.
const exitNoMount = 3

func fullDiskChild(t *testing.T, dir, mode string, sealed bool) ([]byte, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskChild$", "-test.v")
	cmd.Env = append(os.Environ(), envFullDisk+"="+mode+":"+dir, envSealed+"="+strconv.FormatBool(sealed))
	if mode == "tmpfs" {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	}
	return cmd.CombinedOutput()
}

// TestFullDiskChild is the child of TestFullDiskLeavesNoTornRecord; it does
// nothing in a normal run.
func TestFullDiskChild(t *testing.T) {
	mode, dir, ok := strings.Cut(os.Getenv(envFullDisk), ":")
	if !ok {
		t.Skip("run by TestFullDiskLeavesNoTornRecord")
	}
	if mode == "tmpfs" {
		// Private, so the mount cannot propagate back to the parent namespace.
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			fmt.Println("no private mounts:", err)
			os.Exit(exitNoMount)
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
			fmt.Println("no tmpfs:", err)
			os.Exit(exitNoMount)
		}
	}
	path := filepath.Join(dir, "pins.jsonl")
	var ids []age.Identity
	var recipients []age.Recipient
	if os.Getenv(envSealed) == "true" {
		id := newIdentity(t)
		ids, recipients = []age.Identity{id}, []age.Recipient{id.Recipient()}
	}
	e, err := Open(path, recipients...)
	if err != nil {
		t.Fatal(err)
	}
	if mode == "rlimit" {
		signal.Ignore(syscall.SIGXFSZ)
		lim := &syscall.Rlimit{Cur: 16 << 10, Max: 1 << 30}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, lim); err != nil {
			t.Fatal(err)
		}
	}
	// Records of an odd length, so a page or limit boundary falls inside one.
	pad := strings.Repeat("x", 137)
	written := 0
	var appendErr error
	for i := range 10000 {
		appendErr = e.Append(Record{ID: fmt.Sprintf("DEV%05d-%s", i, pad), CommandUUID: "U", PIN: "000000", Time: testTime})
		if appendErr != nil {
			break
		}
		written++
	}
	if appendErr == nil {
		t.Fatal("the disk never filled")
	}
	if recs := readRecords(t, path); len(recs) != written {
		t.Fatalf("%d records on disk after %d good appends", len(recs), written)
	}
	// Space comes back (the limit lifted, the disk grown); the next record
	// starts on its own line.
	if mode == "rlimit" {
		lim := &syscall.Rlimit{Cur: 1 << 30, Max: 1 << 30}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, lim); err != nil {
			t.Fatal(err)
		}
	} else if err := syscall.Mount("", dir, "", syscall.MS_REMOUNT, "size=128k"); err != nil {
		t.Fatal(err)
	}
	if err := e.Append(Record{ID: "AFTER", CommandUUID: "U", PIN: "111111", Time: testTime}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	recs := readRecords(t, path)
	if len(recs) != written+1 || recs[len(recs)-1].ID != "AFTER" {
		t.Fatalf("%d records, last %q; want %d ending with AFTER", len(recs), recs[len(recs)-1].ID, written+1)
	}
	if pin, err := recs[len(recs)-1].Unseal(ids); err != nil || pin != "111111" || recs[0].Sealed() != (len(ids) > 0) {
		t.Fatalf("the record after the full disk: PIN %q, %v (sealed %t)", pin, err, recs[0].Sealed())
	}
	fmt.Printf("escrow ok: %d records, then %v, then one more\n", written, appendErr)
}
