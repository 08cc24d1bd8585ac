package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// gateProxy relays to the script's NanoMDM until it has relayed its
// quota, then stops listening: later requests are refused before they
// connect, so they provably never reach the server. gate-open listens
// again at the same address.
type gateProxy struct {
	mu    sync.Mutex
	addr  string
	srv   *http.Server
	l     net.Listener
	left  atomic.Int64
	proxy *httputil.ReverseProxy
}

var gates sync.Map // script work dir -> *gateProxy

func (g *gateProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := g.left.Add(-1)
	if n < 0 {
		http.Error(w, "gate closed", http.StatusServiceUnavailable) // never reached: the listener is closed first
		return
	}
	if n == 0 {
		// Nobody listens before this answer leaves, and the client must
		// dial again for its next request: it is refused.
		w.Header().Set("Connection", "close")
		g.mu.Lock()
		g.l.Close()
		g.mu.Unlock()
	}
	g.proxy.ServeHTTP(w, r)
}

func (g *gateProxy) listen(ts *testscript.TestScript) {
	l, err := net.Listen("tcp", g.addr)
	ts.Check(err)
	g.addr = l.Addr().String()
	srv := &http.Server{Handler: g}
	g.mu.Lock()
	g.srv, g.l = srv, l
	g.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
	ts.Defer(func() { srv.Close() })
}

// cmdGateProxy starts the gate in front of NanoMDM, relaying N requests,
// and points MDMCTL_SERVER at it: gate-proxy N.
func cmdGateProxy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: gate-proxy N")
	}
	var n int64
	_, err := fmt.Sscan(args[0], &n)
	ts.Check(err)
	target, err := url.Parse(ts.Getenv("NANOMDM_URL"))
	ts.Check(err)
	if target.Host == "" {
		ts.Fatalf("gate-proxy: start nanomdm first")
	}
	g := &gateProxy{addr: "127.0.0.1:0", proxy: httputil.NewSingleHostReverseProxy(target)}
	g.left.Store(n)
	g.listen(ts)
	gates.Store(ts.Getenv("WORK"), g)
	ts.Setenv("MDMCTL_SERVER", "http://"+g.addr)
}

// cmdGateOpen makes the gate listen again and relay everything: gate-open.
func cmdGateOpen(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: gate-open")
	}
	v, ok := gates.Load(ts.Getenv("WORK"))
	if !ok {
		ts.Fatalf("gate-open: no gate-proxy in this script")
	}
	g := v.(*gateProxy)
	g.mu.Lock()
	srv := g.srv
	g.mu.Unlock()
	srv.Close()
	g.left.Store(1 << 40)
	g.listen(ts)
}

// cmdReceivedAs asserts that every device named in a JSON Lines output of
// mdmctl received exactly one command: a DeviceLock under the CommandUUID
// that output gave it. received-as FILE.
func cmdReceivedAs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: received-as FILE")
	}
	f, err := os.Open(filepath.Join(ts.Getenv("WORK"), args[0]))
	ts.Check(err)
	defer f.Close()
	set := devicesOf(ts)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var d report.Device
		ts.Check(json.Unmarshal(sc.Bytes(), &d))
		got := set.device(ts, d.ID).Received()
		if len(got) != 1 {
			ts.Fatalf("%s received %d commands, want exactly one", d.ID, len(got))
		}
		if c := got[0].Command; c.RequestType != "DeviceLock" || c.CommandUUID != d.CommandUUID {
			ts.Fatalf("%s received %s %s, want DeviceLock %s", d.ID, c.RequestType, c.CommandUUID, d.CommandUUID)
		}
		n++
	}
	ts.Check(sc.Err())
	fmt.Fprintf(ts.Stdout(), "%d devices each received one DeviceLock under its original CommandUUID\n", n)
}

// cmdEscrowOnePIN asserts an escrow file never gives one Mac two PINs,
// and prints how many Macs it holds: escrow-one-pin FILE.
func cmdEscrowOnePIN(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: escrow-one-pin FILE")
	}
	f, err := os.Open(filepath.Join(ts.Getenv("WORK"), args[0]))
	ts.Check(err)
	defer f.Close()
	pins := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r escrow.Record
		ts.Check(json.Unmarshal(sc.Bytes(), &r))
		if p, ok := pins[r.ID]; ok && p != r.PIN {
			ts.Fatalf("%s has two escrowed PINs", r.ID)
		}
		pins[r.ID] = r.PIN
	}
	ts.Check(sc.Err())
	fmt.Fprintf(ts.Stdout(), "%d Macs, one PIN each\n", len(pins))
}
