package server

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Limits bound what one request may carry.
type Limits struct {
	// MaxIDs per request; 1 for servers that take one device per request.
	MaxIDs int
	// MaxIDBytes bounds the joined, escaped IDs of one request (NanoMDM
	// takes them in the URL, which proxies cap).
	MaxIDBytes int
}

// Capabilities are what a kind can do beyond queuing a command.
type Capabilities struct {
	// SkipPush: it can queue without an APNs push (--no-push).
	SkipPush bool
	// Synchronous: each device's answer comes back with the request (the
	// raw exchange), so there is nothing to wait for afterwards.
	Synchronous bool
	// Inventory: it knows its devices' model and OS version (Session.Facts),
	// so the guard can weigh them before anything is sent, in a dry run too.
	Inventory bool
	// SerialNumbers: it can tell which device has a serial number
	// (Session.Serials), so --serial targets can be resolved before sending.
	SerialNumbers bool
	// RecognizesResend: a second request for a CommandUUID it holds is
	// answered "already exists", so a resend of a command that may have
	// landed is recognized, never queued twice (what --resume relies on).
	RecognizesResend bool
	// NoStatus: it offers no way to read what became of a command (a
	// vendor API that answers "accepted" and nothing after), so --wait and
	// `mdmctl status` have nothing to read: --wait is refused.
	NoStatus bool
	// NoInformation: it cannot send DeviceInformation (a vendor API with a
	// lock action but no command of the admin's own), so --preflight is
	// refused: the guard weighs its inventory instead.
	NoInformation bool
}

// Driver is one server kind: it describes itself and opens sessions.
// Each kind's package registers its Driver; nothing outside pkg/server
// looks at a kind's name to decide anything.
type Driver struct {
	Kind string
	// About is one line for help and `config get-contexts`.
	About string
	// Default marks the kind used when none is configured.
	Default bool
	// InProcess kinds run inside mdmctl and take no server URL; each has a
	// built-in context of its own name.
	InProcess bool
	// NeedsAPIKey: requests carry credentials, so a run without a key stops
	// before sending.
	NeedsAPIKey bool
	// DefaultURL is the server URL when none is configured: a hosted
	// service's one API host (SimpleMDM's, Microsoft Graph).
	DefaultURL string
	// URLQuery: the server URL may carry a query (an endpoint of the
	// admin's own, as with the raw kind).
	URLQuery bool
	// Preflight is the default --preflight for the kind (0: off): in-process
	// devices answer at once, so asking them first costs nothing.
	Preflight time.Duration
	Limits    Limits
	Capabilities
	// CheckID, when set, refuses a target ID the kind cannot carry (the
	// characters of a URL path its IDs go in); the error names the ID and why.
	// A refused ID is invalid input: nothing is sent to it.
	CheckID func(id string) error
	// PlanLock, when set, says how the kind carries a DeviceLock's values
	// to one device, or why it cannot (an error naming the value and the
	// kind: the run stops before anything is sent, exit 2). mayBeMac is
	// false only when what is known of the device says it is not a Mac.
	// Unset: Apple's command goes as it is, PIN included.
	PlanLock func(lock apple.DeviceLock, mayBeMac bool) (LockPlan, error)
	// DeviceIDs, when set, lists device IDs for shell completion without
	// opening a session, each with a short description.
	DeviceIDs func() [][2]string
	// Open starts a session with the server.
	Open func(ctx context.Context, cfg Config) (*Session, error)
}

// LockPlan is how a kind carries one DeviceLock's values.
type LockPlan struct {
	// ServerPIN: the server makes the device's unlock PIN itself and
	// returns it (DeviceResult.PIN); the run must escrow it (--pin-escrow)
	// before it shows it anywhere.
	ServerPIN bool
	// Warning, when set, is shown before anything is sent (what the kind
	// will do differently with these values).
	Warning string
}

// Config is what a driver needs to open a session, settled by the caller.
type Config struct {
	// BaseURL is the server URL as parsed (nil for InProcess kinds); RawURL
	// is it as configured, for kinds that read placeholders in it.
	BaseURL *url.URL
	RawURL  string
	// User is the API user or OAuth client ID; APIKey its key, password,
	// client secret or token (a secret: never print).
	User   string
	APIKey string
	// Tenant is the directory the OAuth client belongs to, for kinds whose
	// token endpoint is per tenant (Intune's Entra ID tenant).
	Tenant string
	// HTTP is the client built from the TLS and timeout settings (nil for
	// InProcess kinds, which build their own from Timeout and Debug).
	HTTP        *http.Client
	Retry       Retry
	Concurrency int
	Timeout     time.Duration
	// Debug, when set, receives the redacted HTTP trace.
	Debug io.Writer
	// Warn prints a warning to the user.
	Warn func(string)
	// StateDir, when set, is a folder where an InProcess kind may keep
	// what outlives a run (the sandbox's devices' answers, for a later
	// `mdmctl status`).
	StateDir string
}

// HTTPSession is the session of a kind that needs nothing but srv over
// cfg.HTTP: named for the server's origin, closing the client's idle
// connections.
func (cfg Config) HTTPSession(srv Server) *Session {
	return &Session{Server: srv, Name: Origin(cfg.BaseURL), Close: cfg.HTTP.CloseIdleConnections}
}

// Session is an opened server.
type Session struct {
	Server Server
	// Name identifies the server in output (scheme://host, or the kind).
	Name string
	// Close releases what Open started; never nil.
	Close func()
	// Answers, when set, feeds device answers straight to a collector (an
	// in-process server's, or answers polled from the server); otherwise
	// --wait runs a webhook receiver.
	Answers func(*webhook.Collector)
	// PINs, when set, takes the run's keep for a PIN the server publishes
	// after Enqueue returned without it (DeviceResult.PINNote): the
	// session's answer watcher calls keep with the device's CommandUUID,
	// target ID and PIN, once per device, before it delivers that device's
	// answer, and shows, logs or returns the PIN nowhere else. keep escrows
	// the PIN before anything may show it; an error means it was not kept,
	// and the device's line still says where the PIN is. A run that
	// escrows calls it before Answers; one that does not leaves the PIN on
	// the server.
	PINs func(keep func(commandUUID, id, pin string) error)
	// Facts, when set (Capabilities.Inventory), looks devices up on the
	// server; devices it does not know are absent from the map. An error
	// leaves out the devices it could not read, and says why.
	Facts func(ctx context.Context, ids []string) (map[string]apple.Device, error)
	// Serials, when set (Capabilities.SerialNumbers), maps serial numbers
	// to the server's device IDs; serials it does not know are absent.
	Serials func(ctx context.Context, serials []string) (map[string]string, error)
}

var registry struct {
	sync.Mutex
	drivers map[string]Driver
}

// Register makes a kind available; each kind's package calls it from init.
func Register(d Driver) {
	registry.Lock()
	defer registry.Unlock()
	if registry.drivers == nil {
		registry.drivers = map[string]Driver{}
	}
	if _, dup := registry.drivers[d.Kind]; dup || d.Kind == "" || d.Open == nil {
		panic(fmt.Sprintf("server: bad or duplicate driver registration %q", d.Kind))
	}
	registry.drivers[d.Kind] = d
}

// Lookup returns the driver of kind.
func Lookup(kind string) (Driver, bool) {
	registry.Lock()
	defer registry.Unlock()
	d, ok := registry.drivers[kind]
	return d, ok
}

// Kinds lists the registered kinds: the default first, then by name.
func Kinds() []string {
	registry.Lock()
	defer registry.Unlock()
	kinds := make([]string, 0, len(registry.drivers))
	for k := range registry.drivers {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int {
		da, db := registry.drivers[a].Default, registry.drivers[b].Default
		switch {
		case da && !db:
			return -1
		case db && !da:
			return 1
		}
		return cmp.Compare(a, b)
	})
	return kinds
}

// DefaultKind is the kind used when none is configured.
func DefaultKind() string {
	for _, k := range Kinds() {
		if d, _ := Lookup(k); d.Default {
			return k
		}
	}
	return ""
}

// Poll runs a kind's polling for the answers a collector awaits (a server
// with no webhook for them), from the moment a run starts waiting until
// the session closes, and says how to close it: polling stopped, then
// cfg.HTTP's idle connections closed. Each distinct polling error is
// warned about once, after what ("polling Fleet for answers").
func Poll(cfg Config, what string, watch func(ctx context.Context, col *webhook.Collector, onError func(error))) (answers func(*webhook.Collector), closeSession func()) {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	warned := map[string]bool{}
	onError := func(err error) { // called from the one polling goroutine
		if msg := err.Error(); !warned[msg] && cfg.Warn != nil {
			warned[msg] = true
			cfg.Warn(what + ": " + msg)
		}
	}
	answers = func(col *webhook.Collector) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watch(ctx, col, onError)
		}()
	}
	closeSession = func() {
		stop()
		wg.Wait()
		cfg.HTTP.CloseIdleConnections()
	}
	return answers, closeSession
}
