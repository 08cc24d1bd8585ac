package main

import (
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// cmdAgeKeygen makes a fresh age key pair for the script, as age-keygen
// would: the identity in FILE (mode 0600), the public key in FILE.pub and
// in the environment variable VAR: age-keygen FILE VAR. The private key
// joins the secrets mdmctl's output is watched for.
func cmdAgeKeygen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: age-keygen FILE VAR")
	}
	id, err := age.GenerateX25519Identity()
	ts.Check(err)
	path := filepath.Join(ts.Getenv("WORK"), args[0])
	ts.Check(os.WriteFile(path, []byte("# test key made by the script\n"+id.String()+"\n"), 0o600))
	ts.Check(os.WriteFile(path+".pub", []byte(id.Recipient().String()+"\n"), 0o644))
	ts.Setenv(args[1], id.Recipient().String())
	ts.Setenv(envSecrets, ts.Getenv(envSecrets)+","+id.String())
}

// cmdReceivedPIN prints the PIN of the last DeviceLock the enrolled device
// received, as the Mac would hold it: received-pin UDID.
func cmdReceivedPIN(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: received-pin UDID")
	}
	got := devicesOf(ts).device(ts, args[0]).Received()
	for i := len(got) - 1; i >= 0; i-- {
		if c := got[i].Command; c.RequestType == apple.RequestTypeDeviceLock {
			if c.PIN == "" {
				ts.Fatalf("%s received DeviceLock %s without a PIN", args[0], c.CommandUUID)
			}
			fmt.Fprintln(ts.Stdout(), c.PIN)
			return
		}
	}
	ts.Fatalf("%s received no DeviceLock", args[0])
}
