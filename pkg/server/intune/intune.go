// Package intune is the adapter for Microsoft Intune, through Microsoft
// Graph's device management API. Intune takes no MDM command of the
// admin's own: it locks a device with its own remoteLock action.
//
// Read from Microsoft Graph's v1.0 reference (managedDevice, remoteLock,
// deviceActionResult, remoteLockActionResult, actionState; "national cloud
// deployments"; throttling) and the v1.0 models of microsoftgraph/msgraph-sdk-go
// (models/managed_device.go, device_action_result.go,
// remote_lock_action_result.go, action_state.go):
//
//   - Auth: Entra ID OAuth client credentials for an app registration:
//     POST https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token with
//     the client ID and secret, scope https://graph.microsoft.com/.default.
//     The US Government clouds (graph.microsoft.us, dod-graph.microsoft.us)
//     take login.microsoftonline.us, 21Vianet's (microsoftgraph.chinacloudapi.cn)
//     login.chinacloudapi.cn, each with its own Graph host's .default scope.
//     Any other server URL (a stand-in, a proxy) serves the token endpoint
//     at its own origin under the same path. Certificate credentials (a
//     PS256 client assertion naming the certificate by its x5t#S256
//     thumbprint, Microsoft identity platform "certificate credentials") replace the
//     secret when it reads "certificate:/path/to/key-and-cert.pem" (see
//     CertSource). Application permissions:
//     DeviceManagementManagedDevices.Read.All to read devices and their
//     action results, DeviceManagementManagedDevices.PrivilegedOperations.All
//     for remoteLock.
//   - Lock: POST /v1.0/deviceManagement/managedDevices/{id}/remoteLock, no
//     body; 204 No Content. No PIN, message or phone number can be given;
//     for a Mac Intune makes a six-digit PIN itself, which Graph exposes as
//     remoteLockActionResult.unlockPin in the device's deviceActionResults
//     (v1.0 schema). Whether Intune fills it in as soon as the action is
//     recorded is not confirmed: Enqueue reads it for a few seconds after the
//     lock and escrows it; when it is absent the device's line says it is in
//     the Intune admin center, and --wait's polling hands a PIN Intune shows
//     later to the run (Session.PINs), which escrows it.
//   - Inventory: GET /v1.0/deviceManagement/managedDevices with $select and
//     @odata.nextLink paging; $filter=serialNumber eq '...' for serials
//     (Graph does not document which properties filter and ignores a filter
//     it cannot apply, so every match is checked). Graph's list leaves udid
//     empty: a UDID is read per device with GET .../managedDevices/{id}?$select=udid.
//     A managed device ID (a GUID from the Intune console) is taken as a
//     target as well.
//   - Facts for the guard: operatingSystem (macOS, iOS, iPadOS), osVersion,
//     model. Graph's model is not always Apple's model identifier (it can be
//     a marketing name such as "MacBook Air"); only an identifier-shaped value
//     (MacBookAir10,1) is passed on. Graph v1.0 reports no processor
//     architecture. So for a Mac Intune names by marketing name the model
//     is unknown and the guard's rules for an unknown model apply: on macOS
//     11.0–11.4 it refuses (give --model for an Intel Mac), on 11.5 and later
//     it sends.
//   - Answers: deviceActionResults lists, per action, actionName, actionState
//     (none, pending, canceled, active, done, failed, notSupported),
//     startDateTime and lastUpdatedDateTime. --wait polls the device's
//     remoteLock result: done is Acknowledged; failed, notSupported and
//     canceled an Error naming the state; pending and active are no answer yet.
//   - Errors: {"error": {"code", "message", "innerError": {"request-id", ...}}};
//     429 with Retry-After when throttled (Intune's device service: about
//     2,000 requests per 20 seconds per app per tenant).
//
// Not confirmed at the source: that Intune fills unlockPin in through Graph
// and how soon; that a remoteLock is in deviceActionResults, pending, by
// the time Graph answers 204 (the duplicate check relies on it), a later
// lock replacing it; that $filter on serialNumber is applied; which model
// Intune reports for each Mac.
//
// Retries: Graph has no idempotency key for remoteLock and no "already
// exists" answer. Before each lock the adapter reads the device's action
// results; an attempt that may have reached Intune is resent only after a
// second read shows no remoteLock started since that first read (a newer
// one means the attempt landed: queued, not resent); when the read fails,
// nothing is resent and the device is unknown. A resumed run's command
// (MayHaveLanded) is likewise not sent when Intune shows a recent remoteLock.
package intune

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// Client talks to Microsoft Graph for one Intune tenant.
type Client struct {
	// BaseURL is the Graph root (https://graph.microsoft.com), possibly
	// with a proxy's path prefix, without the API version.
	BaseURL *url.URL
	Tokens  Tokens
	HTTP    *http.Client
	// Retry resends only after Intune's action results show the attempt
	// did not land (see Enqueue).
	Retry       server.Retry
	Concurrency int
	// PINWait bounds how long Enqueue looks for a Mac's unlock PIN after
	// the lock (0: DefaultPINWait); PINPoll paces those reads.
	PINWait, PINPoll time.Duration
	// PollFirst and PollMax pace --wait's polling (0: the defaults).
	PollFirst, PollMax time.Duration
	// Now is the clock (tests replace it).
	Now func() time.Time

	mu    sync.Mutex
	known map[string]*managedDevice // by the target ID it was resolved from
	sent  map[sentKey]sentLock
	// keepPIN is the run's keep for a PIN Intune publishes after Enqueue
	// returned (Session.PINs); nil: such a PIN stays in Intune.
	keepPIN func(commandUUID, id, pin string) error

	indexMu   sync.Mutex
	listed    bool
	unindexed []managedDevice           // Apple devices whose UDID is not read yet
	index     map[string]*managedDevice // by upper-case UDID
}

var _ server.Server = (*Client)(nil)

// Defaults for the PIN read and --wait's polling.
const (
	DefaultPINWait = 6 * time.Second
	defaultPINPoll = time.Second
	// RecentLock is how far back a remoteLock Intune shows may be a resumed
	// command's earlier attempt.
	RecentLock = 24 * time.Hour
)

// ErrNoInformation: Intune sends no command of the admin's own.
var ErrNoInformation = errors.New("no DeviceInformation through Intune: Graph offers remoteLock, not MDM commands")

type sentKey struct{ uuid, id string }

// sentLock is a remoteLock this session sent (or found landed): the
// device, and what tells its action result from an earlier one.
type sentLock struct {
	device string
	after  time.Time // its result started after this (zero: any)
	at     time.Time // its own start, when known (a landed attempt found)
	// pinLate: a Mac's lock whose Enqueue returned without the PIN; --wait
	// hands it to keepPIN when Intune shows it, then clears this.
	pinLate bool
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Enqueue locks each of req.IDs with Intune's remoteLock, one request per
// device (Limits.MaxIDs is 1), and reads a Mac's unlock PIN back.
func (c *Client) Enqueue(ctx context.Context, req server.Request) (*server.Result, error) {
	switch {
	case len(req.IDs) != 1:
		return nil, fmt.Errorf("one device per remoteLock request, not %d", len(req.IDs))
	case req.IsInformation():
		return nil, ErrNoInformation
	}
	d, err := c.lockOne(ctx, req, req.IDs[0])
	if err != nil {
		return nil, err
	}
	return &server.Result{Devices: []server.DeviceResult{d}}, nil
}

var (
	errLanded     = errors.New("remoteLock already recorded by Intune")
	errUnverified = errors.New("unverified")
)

func (c *Client) lockOne(ctx context.Context, req server.Request, id string) (server.DeviceResult, error) {
	origin := server.Origin(c.BaseURL)
	known, err := c.resolve(ctx, []string{id})
	if err != nil {
		return server.DeviceResult{}, err
	}
	dev := known[id]
	if dev == nil {
		return server.DeviceResult{ID: id, Outcome: server.Failed,
			Error: "not sent: Intune has no managed device with this UDID, serial number or ID"}, nil
	}
	ref := "managedDevice " + dev.ID
	// What Intune shows before the lock tells this lock's result apart.
	prior, found, err := c.lastLock(ctx, dev.ID)
	switch {
	case err != nil:
		return server.DeviceResult{}, fmt.Errorf("reading the device's action results before locking it: %w", err)
	case !found:
		return server.DeviceResult{ID: id, Outcome: server.Failed, Error: "not sent: Intune no longer has managed device " + dev.ID}, nil
	}
	if req.MayHaveLanded && prior != nil && c.now().Sub(prior.start()) < RecentLock {
		// A resumed run: an earlier run's attempt may be this remoteLock.
		switch prior.ActionState {
		case statePending, stateActive:
			c.record(req.CommandUUID, id, sentLock{device: dev.ID, at: prior.start(), pinLate: prior.UnlockPin == "" && dev.mayBeMac()})
			return server.DeviceResult{ID: id, Outcome: server.Queued, Reference: ref, PIN: prior.UnlockPin,
				Error: fmt.Sprintf("not resent: Intune holds a remoteLock for this device since %s (%s), an earlier attempt of this command", prior.StartDateTime, prior.ActionState)}, nil
		default:
			return server.DeviceResult{ID: id, Outcome: server.Unknown, Reference: ref, PIN: prior.UnlockPin,
				Error: fmt.Sprintf("not resent: Intune shows a remoteLock started %s (%s) that may be an earlier attempt of this command; sending again would lock the device twice", prior.StartDateTime, prior.ActionState)}, nil
		}
	}
	if prior != nil && (prior.ActionState == statePending || prior.ActionState == stateActive) && dev.mayBeMac() {
		return server.DeviceResult{ID: id, Outcome: server.Failed, Reference: ref,
			Error: fmt.Sprintf("not sent: Intune already has a remoteLock %s for this device since %s; a second would give the Mac a second PIN (let it finish, or cancel it in Intune)", prior.ActionState, prior.StartDateTime)}, nil
	}
	var after time.Time
	if prior != nil {
		after = prior.start()
	}
	u, err := c.url(ManagedDevicesPath + "/" + url.PathEscape(dev.ID) + "/remoteLock")
	if err != nil {
		return server.DeviceResult{}, err
	}
	start := time.Now()
	var checkErr error
	check := func(ctx context.Context) error {
		ours, _, err := c.lockAfter(ctx, dev.ID, after)
		switch {
		case err != nil:
			checkErr = err
			return errUnverified
		case ours != nil:
			return errLanded
		}
		return nil
	}
	resp, body, sent, err := c.exchange(ctx, http.MethodPost, u, 64<<10, check)
	landedResult := func(why string) (server.DeviceResult, error) {
		c.record(req.CommandUUID, id, sentLock{device: dev.ID, after: after})
		pin, note := c.readPIN(ctx, req.CommandUUID, id, dev, after, 0)
		return server.DeviceResult{ID: id, Outcome: server.Queued, Reference: ref, PIN: pin, PINNote: note,
			Error: "Intune recorded the remoteLock (" + why + "); not resent"}, nil
	}
	// settle decides a lock whose fate is unknown: if Intune shows a
	// remoteLock started since the one before, it landed; if it shows none,
	// the failure stands as one that queued nothing; if the results cannot
	// be read, it may be queued.
	settle := func(failure error) (server.DeviceResult, error) {
		if !server.MayBeQueued(failure) {
			return server.DeviceResult{}, failure
		}
		ours, _, err := c.lockAfter(ctx, dev.ID, after)
		switch {
		case err != nil:
			return server.DeviceResult{}, failure
		case ours != nil:
			return landedResult(failure.Error())
		}
		var m *server.MaybeQueuedError
		errors.As(failure, &m)
		return server.DeviceResult{}, m.Err
	}
	switch {
	case errors.Is(err, errLanded):
		return landedResult("an earlier attempt got no usable reply")
	case errors.Is(err, errUnverified):
		return server.DeviceResult{}, &server.MaybeQueuedError{Err: &server.UnavailableError{Server: origin, Elapsed: time.Since(start), Attempts: sent.Attempts, Err: fmt.Errorf(
			"no usable reply, and reading the device's action results failed (%v); not resent, to never lock it twice", checkErr)}}
	case err != nil:
		return settle(err)
	}
	switch status := resp.StatusCode; {
	case status == http.StatusNoContent || status == http.StatusOK || status == http.StatusAccepted:
		c.record(req.CommandUUID, id, sentLock{device: dev.ID, after: after})
		pin, note := c.readPIN(ctx, req.CommandUUID, id, dev, after, c.pinWait())
		return server.DeviceResult{ID: id, Outcome: server.Queued, Reference: ref, PIN: pin, PINNote: note}, nil
	case status == http.StatusNotFound:
		text, _ := parseGraphError(resp, body)
		return server.DeviceResult{ID: id, Outcome: server.Failed, Reference: ref, Error: "not queued: Intune no longer has this managed device (" + text + ")"}, nil
	case status == http.StatusBadRequest || status == http.StatusConflict || status == http.StatusPreconditionFailed:
		text, isGraph := parseGraphError(resp, body)
		if !isGraph {
			return server.DeviceResult{}, c.classify(resp, body)
		}
		return server.DeviceResult{ID: id, Outcome: server.Failed, Reference: ref, Error: "not queued: Intune refused the remoteLock: " + text}, nil
	case status >= 500 && status != http.StatusServiceUnavailable:
		// A gateway's or Graph's failure may follow the action's recording.
		return settle(sent.Unanswered(c.classify(resp, body)))
	}
	return server.DeviceResult{}, sent.Unanswered(c.classify(resp, body))
}
