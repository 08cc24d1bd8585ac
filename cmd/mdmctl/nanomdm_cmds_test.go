package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/internal/nanomdmtest"
	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// scriptDevices holds each script's simulated devices, by script work dir.
var scriptDevices sync.Map // workdir -> *deviceSet

type deviceSet struct {
	mu      sync.Mutex
	server  *nanomdmtest.Server
	devices map[string]*simdevice.Device
}

func devicesOf(ts *testscript.TestScript) *deviceSet {
	v, _ := scriptDevices.LoadOrStore(ts.Getenv("WORK"), &deviceSet{devices: map[string]*simdevice.Device{}})
	return v.(*deviceSet)
}

// envStorage names the NanoMDM storage the script runs on, set by the test
// that runs it (scriptParams).
const envStorage = "STORAGE"

// cmdNanoMDM starts the real NanoMDM v0.9.0 for this script, on the storage
// $STORAGE names, and sets MDMCTL_SERVER and MDMCTL_API_KEY. Options:
// webhook=URL hmac=KEY.
func cmdNanoMDM(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: nanomdm [webhook=URL] [hmac=KEY]")
	}
	st, err := nanomdmtest.ParseStorage(ts.Getenv(envStorage))
	ts.Check(err)
	opts := nanomdmtest.Options{Storage: st}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "webhook":
			opts.WebhookURL = ts.Getenv(v)
			if opts.WebhookURL == "" {
				opts.WebhookURL = v
			}
		case "hmac":
			opts.WebhookHMACKey = v
		default:
			ts.Fatalf("nanomdm: unknown option %q", a)
		}
	}
	s, err := nanomdmtest.Start(opts)
	ts.Check(err)
	ts.Defer(s.Close)
	set := devicesOf(ts)
	set.server = s
	ts.Setenv("NANOMDM_URL", s.URL)
	ts.Setenv("MDMCTL_SERVER", s.URL)
	ts.Setenv("MDMCTL_API_KEY", s.APIKey)
}

// cmdEnroll enrolls a simulated device: enroll UDID [behavior] [key=value...]
// with keys platform, model, os.
func cmdEnroll(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: enroll UDID [behavior] [platform=P model=M os=V]")
	}
	set := devicesOf(ts)
	if set.server == nil {
		ts.Fatalf("enroll: start nanomdm first")
	}
	f, behavior := parseFacts(ts, args[1:])
	f.UDID = args[0]
	d, err := set.server.Enroll(context.Background(), f, behavior)
	ts.Check(err)
	set.mu.Lock()
	set.devices[f.UDID] = d
	set.mu.Unlock()
}

// parseFacts reads [behavior] [platform=P model=M os=V] arguments; the
// behavior may be error-says="TEXT" (a Go string literal): the device
// answers DeviceLock with an Error whose LocalizedDescription is TEXT.
func parseFacts(ts *testscript.TestScript, args []string) (simdevice.Facts, simdevice.Behavior) {
	var f simdevice.Facts
	var behavior simdevice.Behavior = simdevice.Acknowledge
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			behavior = simdevice.Kind(a)
			continue
		}
		switch k {
		case "platform":
			f.Platform = apple.Platform(v)
		case "model":
			f.Model = v
		case "os":
			f.OSVersion = v
		case "error-says":
			text, err := strconv.Unquote(v)
			ts.Check(err)
			behavior = simdevice.BehaviorFunc(func(cmd apple.ParsedCommand, _ int) apple.Response {
				r := simdevice.FormatErrorResponse(cmd.CommandUUID, text)
				r.Status = apple.StatusError
				return r
			})
		default:
			ts.Fatalf("unknown device option %q", a)
		}
	}
	return f, behavior
}

func (set *deviceSet) device(ts *testscript.TestScript, udid string) *simdevice.Device {
	set.mu.Lock()
	defer set.mu.Unlock()
	d, ok := set.devices[udid]
	if !ok {
		ts.Fatalf("no enrolled device %q", udid)
	}
	return d
}

// cmdCheckIn makes devices poll the server once, as after a push.
func cmdCheckIn(ts *testscript.TestScript, neg bool, args []string) {
	set := devicesOf(ts)
	for _, udid := range args {
		err := set.device(ts, udid).CheckIn(context.Background())
		if (err != nil) != neg {
			ts.Fatalf("checkin %s: %v", udid, err)
		}
	}
}

// cmdReceived prints, for a device, each command it received as
// "CommandUUID RequestType key=value..." plus its raw plist, so a script can
// match with stdout.
func cmdReceived(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: received UDID")
	}
	var b strings.Builder
	for _, r := range devicesOf(ts).device(ts, args[0]).Received() {
		c := r.Command
		fmt.Fprintf(&b, "command %s %s message=%q phone=%q pin=%t tether=%t answer=%s\n",
			c.CommandUUID, c.RequestType, c.Message, c.PhoneNumber, c.PIN != "", c.RequestRequiresNetworkTether, r.Answer.Status)
		b.Write(r.Raw)
		b.WriteString("\n")
	}
	ts.Stdout().Write([]byte(b.String()))
}

// cmdPoll makes every enrolled device check in every 20ms until the script
// ends, as devices woken by pushes would.
func cmdPoll(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: poll")
	}
	set := devicesOf(ts)
	ctx, cancel := context.WithCancel(context.Background())
	ts.Defer(cancel)
	set.mu.Lock()
	defer set.mu.Unlock()
	for _, d := range set.devices {
		go func() { _ = d.Run(ctx, 20*time.Millisecond) }()
	}
}

// cmdFreeAddr sets NAME to a free loopback host:port, and NAME_PORT to
// its port (for a listener on every interface).
func cmdFreeAddr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: free-addr NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	addr := l.Addr().(*net.TCPAddr)
	ts.Check(l.Close())
	ts.Setenv(args[0], addr.String())
	ts.Setenv(args[0]+"_PORT", strconv.Itoa(addr.Port))
}
