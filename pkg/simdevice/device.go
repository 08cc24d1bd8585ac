// Package simdevice simulates Apple devices on the MDM wire: a device
// enrolls with signed Authenticate and TokenUpdate check-ins, polls the
// server when woken, receives commands, records them and answers them as a
// real device would, through a Behavior.
//
// It speaks plain HTTP to any server base URL; TLS and push are the
// caller's business (a push handler calls CheckIn or Wake).
package simdevice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"howett.net/plist"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// Wire constants of Apple's MDM protocol.
const (
	// DefaultPath is where NanoMDM serves check-ins and commands alike.
	DefaultPath = "/mdm"
	// DefaultTopic is the APNs topic simulated devices report.
	DefaultTopic = "com.apple.mgmt.External.mdmctl-sandbox"

	ContentTypeCheckIn = "application/x-apple-aspen-mdm-checkin"
	ContentTypeCommand = "application/x-apple-aspen-mdm; charset=UTF-8"
)

// maxReply bounds a server reply; commands are small, profiles a few MB.
const maxReply = 16 << 20

// maxExchanges bounds one poll session, so a server that keeps handing out
// commands fails the check-in instead of hanging a test that passed no deadline.
const maxExchanges = 10000

// Facts describe a simulated device; they are also what the sandbox shows
// and feeds to the guard. Empty means unknown.
type Facts struct {
	UDID         string
	Name         string         // DeviceName
	Platform     apple.Platform // empty: taken from Model when it is known
	Model        string         // model identifier (ProductName), e.g. MacBookAir10,1
	ModelName    string         // marketing name, e.g. "MacBook Air"; Macs get one from Model when empty
	OSVersion    string
	BuildVersion string
	Serial       string
}

// EffectivePlatform is Platform, or the platform the model identifier implies.
func (f Facts) EffectivePlatform() apple.Platform {
	if f.Platform != apple.PlatformUnknown {
		return f.Platform
	}
	p, _, _ := apple.ModelFacts(f.Model)
	return p
}

// Received is one command delivery as the device got it.
type Received struct {
	Raw []byte // the body exactly as the server sent it
	// Command is the parsed envelope; zero when ParseError is set.
	Command    apple.ParsedCommand
	ParseError error
	// Delivery counts deliveries of this CommandUUID, from 1.
	Delivery int
	Answer   apple.Response
}

// Config builds a Device with NewDevice.
type Config struct {
	Facts    Facts
	Behavior Behavior // nil: Acknowledge

	// BaseURL is the server's base URL (it may carry a path prefix).
	BaseURL string
	// Path is the profile's ServerURL path under BaseURL; default DefaultPath.
	Path string
	// CheckInPath is the profile's CheckInURL path; default Path
	// (NanoMDM started with -checkin serves "/checkin").
	CheckInPath string

	// Identity to sign with. When nil, CA issues one, or, without a CA,
	// the device makes a self-signed one. KeyType picks the generated key.
	Identity *Identity
	CA       *CA
	KeyType  KeyType

	// Client sends the requests; else Transport wrapped in a client; else
	// http.DefaultClient. Use either to reach an in-process server.
	Client    *http.Client
	Transport http.RoundTripper

	Topic string // default DefaultTopic
}

// Device is one simulated device. Set its fields before using it; the
// methods are safe for concurrent use.
type Device struct {
	Facts    Facts
	Behavior Behavior // nil: Acknowledge
	// ServerURL receives polls and command results (the profile's ServerURL).
	ServerURL string
	// CheckInURL receives check-in messages; empty means ServerURL.
	CheckInURL string
	Identity   Identity
	HTTP       *http.Client // nil: http.DefaultClient
	Topic      string
	PushMagic  string
	Token      []byte // APNs device token, sent as plist data
	// OnError, when set, hears the check-in errors Run retries.
	OnError func(error)

	once     sync.Once
	session  chan struct{} // one poll session at a time, as on a device
	wake     chan struct{}
	mu       sync.Mutex
	received []Received
	seen     map[string]int // CommandUUID -> deliveries so far
	changed  chan struct{}  // closed and replaced when received grows
}

// NewDevice builds a device from cfg. It does not contact the server.
func NewDevice(cfg Config) (*Device, error) {
	if cfg.Facts.UDID == "" {
		return nil, errors.New("simdevice: Facts.UDID is empty")
	}
	if cfg.BaseURL == "" {
		return nil, errors.New("simdevice: BaseURL is empty")
	}
	path := cfg.Path
	if path == "" {
		path = DefaultPath
	}
	checkInPath := cfg.CheckInPath
	if checkInPath == "" {
		checkInPath = path
	}
	var id Identity
	var err error
	switch {
	case cfg.Identity != nil:
		id = *cfg.Identity
	case cfg.CA != nil:
		id, err = cfg.CA.IssueKey(cfg.Facts.UDID, cfg.KeyType)
	default:
		id, err = SelfSigned(cfg.Facts.UDID, cfg.KeyType)
	}
	if err != nil {
		return nil, err
	}
	hc := cfg.Client
	if hc == nil && cfg.Transport != nil {
		hc = &http.Client{Transport: cfg.Transport}
	}
	d := newDevice(cfg.Facts, cfg.Behavior, joinURL(cfg.BaseURL, path), id, hc)
	d.CheckInURL = joinURL(cfg.BaseURL, checkInPath)
	if cfg.Topic != "" {
		d.Topic = cfg.Topic
	}
	return d, nil
}

func newDevice(f Facts, b Behavior, serverURL string, id Identity, hc *http.Client) *Device {
	// Token and PushMagic derive from the UDID so runs are reproducible.
	token := sha256.Sum256([]byte("simdevice token " + f.UDID))
	magic := uuid.NewSHA1(uuid.NameSpaceOID, []byte("simdevice push magic "+f.UDID))
	return &Device{
		Facts:     f,
		Behavior:  b,
		ServerURL: serverURL,
		Identity:  id,
		HTTP:      hc,
		Topic:     DefaultTopic,
		PushMagic: strings.ToUpper(magic.String()),
		Token:     token[:],
	}
}

func joinURL(base, path string) string {
	return strings.TrimRight(base, "/") + "/" + strings.TrimLeft(path, "/")
}

func (d *Device) init() {
	d.once.Do(func() {
		d.session = make(chan struct{}, 1)
		d.wake = make(chan struct{}, 1)
		d.mu.Lock()
		d.seen = map[string]int{}
		d.changed = make(chan struct{})
		d.mu.Unlock()
	})
}

func (d *Device) behavior() Behavior {
	if d.Behavior == nil {
		return Acknowledge
	}
	return d.Behavior
}

func (d *Device) checkInURL() string {
	if d.CheckInURL != "" {
		return d.CheckInURL
	}
	return d.ServerURL
}

// Check-in messages, with Apple's key names (mdm/checkin/*.yaml).
type authenticateMessage struct {
	MessageType  string `plist:"MessageType"`
	Topic        string `plist:"Topic"`
	UDID         string `plist:"UDID"`
	BuildVersion string `plist:"BuildVersion,omitempty"`
	DeviceName   string `plist:"DeviceName,omitempty"`
	Model        string `plist:"Model,omitempty"`
	ModelName    string `plist:"ModelName,omitempty"`
	OSVersion    string `plist:"OSVersion,omitempty"`
	ProductName  string `plist:"ProductName,omitempty"`
	SerialNumber string `plist:"SerialNumber,omitempty"`
}

type tokenUpdateMessage struct {
	MessageType string `plist:"MessageType"`
	Topic       string `plist:"Topic"`
	UDID        string `plist:"UDID"`
	Token       []byte `plist:"Token"`
	PushMagic   string `plist:"PushMagic"`
}

// AuthenticateMessage is the Authenticate plist the device sends. DeviceName,
// Model and ModelName are macOS-only keys (required there); the rest go
// out on every platform when known.
func (d *Device) AuthenticateMessage() ([]byte, error) {
	f := d.Facts
	m := authenticateMessage{
		MessageType:  "Authenticate",
		Topic:        d.Topic,
		UDID:         f.UDID,
		BuildVersion: f.BuildVersion,
		OSVersion:    f.OSVersion,
		ProductName:  f.Model,
		SerialNumber: f.Serial,
	}
	if f.EffectivePlatform() == apple.PlatformMacOS {
		m.DeviceName = orDefault(f.Name, "Mac")
		m.Model = orDefault(f.Model, "Mac")
		m.ModelName = orDefault(f.ModelName, modelName(f.Model))
	}
	return plist.MarshalIndent(m, plist.XMLFormat, "\t")
}

func orDefault(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

var macFamilyRE = regexp.MustCompile(`^([A-Za-z]+)\d+,\d+$`)

// modelName gives the marketing name a device reports for its family
// ("Mac" for a Mac of a family it does not know).
func modelName(model string) string {
	m := macFamilyRE.FindStringSubmatch(model)
	if m == nil {
		return "Mac"
	}
	switch m[1] {
	case "MacBookAir":
		return "MacBook Air"
	case "MacBookPro":
		return "MacBook Pro"
	case "Macmini":
		return "Mac mini"
	case "MacPro":
		return "Mac Pro"
	case "iMacPro":
		return "iMac Pro"
	case "iMac", "MacBook", "iPhone", "iPad":
		return m[1]
	case "VirtualMac":
		return "Apple Virtual Machine"
	case "iPod":
		return "iPod touch"
	case "Watch":
		return "Apple Watch"
	case "RealityDevice":
		return "Apple Vision Pro"
	}
	return "Mac"
}

// Enroll sends Authenticate then TokenUpdate, as a device installing an
// enrollment profile does. NanoMDM binds the identity to the UDID at
// Authenticate, and also clears the device's command queue then.
func (d *Device) Enroll(ctx context.Context) error {
	if err := d.Authenticate(ctx); err != nil {
		return err
	}
	return d.TokenUpdate(ctx)
}

// Authenticate sends the Authenticate check-in.
func (d *Device) Authenticate(ctx context.Context) error {
	body, err := d.AuthenticateMessage()
	if err != nil {
		return err
	}
	if _, err := d.put(ctx, d.checkInURL(), ContentTypeCheckIn, body); err != nil {
		return fmt.Errorf("%s: Authenticate: %w", d.Facts.UDID, err)
	}
	return nil
}

// TokenUpdate sends the TokenUpdate check-in that completes enrollment.
func (d *Device) TokenUpdate(ctx context.Context) error {
	body, err := plist.MarshalIndent(tokenUpdateMessage{
		MessageType: "TokenUpdate", Topic: d.Topic, UDID: d.Facts.UDID,
		Token: d.Token, PushMagic: d.PushMagic,
	}, plist.XMLFormat, "\t")
	if err != nil {
		return err
	}
	if _, err := d.put(ctx, d.checkInURL(), ContentTypeCheckIn, body); err != nil {
		return fmt.Errorf("%s: TokenUpdate: %w", d.Facts.UDID, err)
	}
	return nil
}

// CheckIn runs one poll session, as after a push: report Idle, then run
// and answer each command the server hands over, until it answers with an
// empty body. Offline devices do nothing and return nil. Sessions of one
// device never overlap; a caller waits for the running one or its ctx.
func (d *Device) CheckIn(ctx context.Context) error {
	if d.behavior().Offline() {
		return nil
	}
	d.init()
	select {
	case d.session <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.session }()

	report, err := apple.Response{Status: apple.StatusIdle, UDID: d.Facts.UDID}.Encode()
	if err != nil {
		return err
	}
	for range maxExchanges {
		body, err := d.put(ctx, d.ServerURL, ContentTypeCommand, report)
		if err != nil {
			return fmt.Errorf("%s: check-in: %w", d.Facts.UDID, err)
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return nil
		}
		if report, err = d.Execute(body).Encode(); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s: check-in: server sent %d commands in one session", d.Facts.UDID, maxExchanges)
}

// Wake asks a running Run loop to check in now, as an APNs push would. A
// wake while a session runs, or before Run starts, is kept (at most one).
func (d *Device) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run checks in at once, then every interval (never, if interval <= 0)
// and whenever Wake is called, until ctx ends; it returns ctx's error.
// Failed check-ins go to OnError and are retried at the next tick or wake.
func (d *Device) Run(ctx context.Context, interval time.Duration) error {
	d.init()
	if d.behavior().Offline() {
		<-ctx.Done()
		return ctx.Err()
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		if err := d.CheckIn(ctx); err != nil && ctx.Err() == nil && d.OnError != nil {
			d.OnError(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
		case <-d.wake:
		}
	}
}

// Execute runs one command plist through the behavior, records it and
// returns the answer (with UDID and CommandUUID set). A body that does not
// parse as a command envelope gets CommandFormatError without consulting
// the behavior; DeviceInformation is answered from the device's Facts
// (see Information) unless the behavior is FormatError.
func (d *Device) Execute(raw []byte) apple.Response {
	d.init()
	cmd, perr := apple.ParseCommand(raw)
	cmdUUID := cmd.CommandUUID
	if perr != nil {
		cmdUUID = commandUUIDOf(raw)
	}
	d.mu.Lock()
	seen := d.seen[cmdUUID]
	d.seen[cmdUUID] = seen + 1
	d.mu.Unlock()

	var resp apple.Response
	switch {
	case perr != nil:
		resp = FormatErrorResponse(cmdUUID, "The command could not be parsed.")
	case cmd.RequestType == apple.RequestTypeDeviceInformation && answersInformation(d.behavior()):
		resp = d.informationAnswer(raw, cmd)
	default:
		resp = d.behavior().Answer(cmd, seen)
	}
	if resp.CommandUUID == "" {
		resp.CommandUUID = cmdUUID
	}
	if resp.UDID == "" {
		resp.UDID = d.Facts.UDID
	}

	d.mu.Lock()
	d.received = append(d.received, Received{
		Raw: bytes.Clone(raw), Command: cmd, ParseError: perr, Delivery: seen + 1, Answer: resp,
	})
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
	return resp
}

// commandUUIDOf digs the CommandUUID out of a command that failed to
// parse, so the answer can still name it.
func commandUUIDOf(raw []byte) string {
	var env struct {
		CommandUUID string `plist:"CommandUUID"`
	}
	_, _ = plist.Unmarshal(raw, &env)
	return env.CommandUUID
}

// Received returns the command deliveries so far, oldest first.
func (d *Device) Received() []Received {
	d.init()
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Received(nil), d.received...)
}

// WaitFor blocks until cond holds for the deliveries so far, or ctx ends;
// it returns the deliveries cond last saw. It suits a device run by Run in
// the background.
func (d *Device) WaitFor(ctx context.Context, cond func([]Received) bool) ([]Received, error) {
	d.init()
	for {
		d.mu.Lock()
		got := append([]Received(nil), d.received...)
		changed := d.changed
		d.mu.Unlock()
		if cond(got) {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("%s: waiting for commands: %w", d.Facts.UDID, ctx.Err())
		case <-changed:
		}
	}
}

// StatusError is a non-200 answer from the server.
type StatusError struct {
	StatusCode int
	Body       string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("HTTP %d: %s", e.StatusCode, e.Body)
}

// put PUTs a signed plist and returns the 200 reply body.
func (d *Device) put(ctx context.Context, url, contentType string, body []byte) ([]byte, error) {
	sig, err := d.Identity.MdmSignature(body)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Mdm-Signature", sig)
	req.Header.Set("User-Agent", "MDM/1.0 (mdmctl simdevice)")
	hc := d.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(reply))}
	}
	return reply, nil
}
