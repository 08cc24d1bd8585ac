package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
	"github.com/mdmctl/mdmctl/pkg/server/intune/intunetest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

func init() {
	kindCommands["intune"] = cmdIntune
	kindCommands["intune-drop"] = cmdIntuneDrop
	kindCommands["intune-up"] = cmdIntuneUp
	kindCommands["intune-throttle"] = cmdIntuneThrottle
	kindCommands["intune-locks"] = cmdIntuneLocks
	kindCommands["intune-permissions"] = cmdIntunePermissions
	kindCommands["intune-hide-pin"] = cmdIntuneHidePIN
	kindCommands["intune-offline"] = cmdIntuneOffline
	kindCommands["intune-cert"] = cmdIntuneCert
	kindCommands["intune-pin-is"] = cmdIntunePINIs
	kindCommands["intune-pin-escrowed"] = cmdIntunePINEscrowed
	kindCommands["intune-late-pin"] = cmdIntuneLatePIN
	// The secret, any access token the stand-in issues, any private key,
	// the PIN it makes late.
	scriptSecrets = append(scriptSecrets, "intune-test-secret", "graph-token-", "PRIVATE KEY-----", intuneLatePIN)
}

var fakeIntunes sync.Map // workdir -> *intunetest.Server

// The stand-in's tenant and app registration.
const (
	intuneTenant   = "contoso.onmicrosoft.com"
	intuneClientID = "6731de76-14a6-49ae-97bc-6eba6914391e"
	intuneSecret   = "intune-test-secret"
)

// intuneLatePIN is the PIN every Mac gets after intune-late-pin.
const intuneLatePIN = "604213"

// intuneFailingMac is the stand-in's Mac that answers its lock with an error.
const intuneFailingMac = "FA11ED00-0000-4000-8000-000000000F01"

// intuneModels are what Intune reports as model where it is not Apple's
// identifier: a marketing name (Graph's model is free text).
var intuneModels = map[string]string{
	"MacBookPro16,1": "MacBook Pro",
	"iPhone11,8":     "iPhone XR",
	"iPhone13,2":     "iPhone 12",
}

// cmdIntune starts the Intune (Graph) stand-in with the sandbox's devices
// as its managed devices, answering as they do, plus a Windows PC
// (serial WIN-0001, no UDID) and a Mac whose lock fails (intuneFailingMac),
// and points mdmctl at it: MDMCTL_KIND=intune,
// the tenant, the app's client ID and secret. The Intel Mac and the
// iPhones are reported with marketing names as their model, the other
// devices with Apple's model identifier.
func cmdIntune(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: intune")
	}
	var devices []intunetest.Device
	for _, m := range sandbox.Members {
		osName := "macOS"
		switch m.Facts.Platform {
		case apple.PlatformIOS:
			osName = "iOS"
		case apple.PlatformIPadOS:
			osName = "iPadOS"
		}
		model := m.Facts.Model
		if name, ok := intuneModels[model]; ok {
			model = name
		}
		devices = append(devices, intunetest.Device{UDID: m.Facts.UDID, Serial: m.Facts.Serial, Name: m.Facts.Name,
			OperatingSystem: osName, OSVersion: m.Facts.OSVersion, Model: model, Behavior: m.Behavior})
	}
	devices = append(devices, intunetest.Device{UDID: intuneFailingMac, Serial: "SBX0000F01", Name: "Mac whose lock fails",
		OperatingSystem: "macOS", OSVersion: "14.5", Model: "Mac15,3", Behavior: simdevice.BehaviorFunc(func(cmd apple.ParsedCommand, _ int) apple.Response {
			return simdevice.FormatErrorResponse(cmd.CommandUUID, "The device refused the lock.")
		})})
	devices = append(devices, intunetest.Device{Serial: "WIN-0001", Name: "Surface", OperatingSystem: "Windows", OSVersion: "10.0.22631.4460", Model: "Surface Laptop 5"})
	s := intunetest.Start(intuneTenant, intuneClientID, intuneSecret, devices...)
	ts.Defer(s.Close)
	fakeIntunes.Store(ts.Getenv("WORK"), s)
	ts.Setenv("MDMCTL_SERVER", s.URL)
	ts.Setenv("MDMCTL_KIND", "intune")
	ts.Setenv("MDMCTL_TENANT", intuneTenant)
	ts.Setenv("MDMCTL_API_USER", intuneClientID)
	ts.Setenv("MDMCTL_API_KEY", intuneSecret)
}

func fakeIntune(ts *testscript.TestScript) *intunetest.Server {
	return scriptFake[*intunetest.Server](ts, &fakeIntunes, "intune")
}

// cmdIntuneDrop makes the stand-in record the next N remoteLocks and then
// drop the connection without a reply; "intune-drop N down" also takes
// Graph down (503 to everything) after the drop, until intune-up.
func cmdIntuneDrop(ts *testscript.TestScript, neg bool, args []string) {
	down := len(args) == 2 && args[1] == "down"
	if down {
		args = args[:1]
	}
	s := fakeIntune(ts)
	s.DropReplies(countArg(ts, neg, args, "intune-drop N [down]"))
	s.GoDownAfterDrop(down)
}

// cmdIntuneUp ends the outage of "intune-drop N down".
func cmdIntuneUp(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: intune-up")
	}
	fakeIntune(ts).Up()
}

// cmdIntuneThrottle makes the next N Graph requests answer 429, Retry-After: 1.
func cmdIntuneThrottle(ts *testscript.TestScript, neg bool, args []string) {
	fakeIntune(ts).Throttle(countArg(ts, neg, args, "intune-throttle N"))
}

// cmdIntuneLocks prints how many remoteLocks Intune recorded for a device
// (by UDID, serial or managed ID), then "pin made" for each that made a PIN.
func cmdIntuneLocks(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: intune-locks ID")
	}
	locks := fakeIntune(ts).Locks(args[0])
	fmt.Fprintf(ts.Stdout(), "locks: %d\n", len(locks))
	for _, l := range locks {
		if l.PIN != "" {
			fmt.Fprintln(ts.Stdout(), "pin made")
		}
	}
}

// cmdIntunePermissions grants the app the named permissions only: read
// (DeviceManagementManagedDevices.Read.All), lock (...PrivilegedOperations.All).
func cmdIntunePermissions(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: intune-permissions [read] [lock]")
	}
	read, lock := false, false
	for _, a := range args {
		switch a {
		case "read":
			read = true
		case "lock":
			lock = true
		default:
			ts.Fatalf("unknown permission %q", a)
		}
	}
	fakeIntune(ts).SetPermissions(read, lock)
}

// cmdIntuneHidePIN keeps unlockPin out of the stand-in's action results.
func cmdIntuneHidePIN(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: intune-hide-pin")
	}
	fakeIntune(ts).HidePIN(true)
}

// cmdIntuneLatePIN makes Intune make each Mac's unlock PIN, intuneLatePIN
// ($INTUNE_LATE_PIN), DELAY after the lock: the Mac takes the lock only then.
func cmdIntuneLatePIN(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: intune-late-pin DELAY")
	}
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	fakeIntune(ts).MakePINsLate(d, intuneLatePIN)
	ts.Setenv("INTUNE_LATE_PIN", intuneLatePIN)
}

// cmdIntuneOffline makes a device stop checking in: its locks stay pending.
func cmdIntuneOffline(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: intune-offline ID")
	}
	fakeIntune(ts).SetOffline(args[0])
}

// cmdIntuneCert writes a new RSA key and its self-signed certificate to
// FILE (PEM, mode 600); "register" also uploads the certificate to the
// stand-in's app registration.
func cmdIntuneCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 || (len(args) == 2 && args[1] != "register") {
		ts.Fatalf("usage: intune-cert FILE [register]")
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	ts.Check(err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mdmctl"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ts.Check(err)
	data := append(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o600))
	if len(args) == 2 {
		cert, err := x509.ParseCertificate(der)
		ts.Check(err)
		fakeIntune(ts).SetCertificate(cert)
	}
}

// cmdIntunePINIs checks that FILE holds (one line) the PIN Intune made with
// its latest remoteLock of the device.
func cmdIntunePINIs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: intune-pin-is FILE UDID")
	}
	locks := fakeIntune(ts).Locks(args[1])
	if len(locks) == 0 || locks[len(locks)-1].PIN == "" {
		ts.Fatalf("Intune made no PIN for %s", args[1])
	}
	if got := strings.TrimSpace(ts.ReadFile(args[0])); got != locks[len(locks)-1].PIN {
		ts.Fatalf("%s holds %q, not the PIN Intune made", args[0], got)
	}
}

// cmdIntunePINEscrowed checks that the escrow FILE holds, for the device,
// the PIN Intune made with its latest remoteLock.
func cmdIntunePINEscrowed(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: intune-pin-escrowed FILE UDID")
	}
	locks := fakeIntune(ts).Locks(args[1])
	if len(locks) == 0 || locks[len(locks)-1].PIN == "" {
		ts.Fatalf("Intune made no PIN for %s", args[1])
	}
	pins, err := escrow.PINs(ts.MkAbs(args[0]))
	ts.Check(err)
	found := false
	for k, pin := range pins {
		if strings.EqualFold(k[1], args[1]) && pin == locks[len(locks)-1].PIN {
			found = true
		}
	}
	if found == neg {
		ts.Fatalf("escrow %s holds Intune's PIN for %s: %t", args[0], args[1], found)
	}
}
