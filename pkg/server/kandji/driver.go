package kandji

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// Kind names Kandji in settings.
const Kind = "kandji"

func init() {
	server.Register(server.Driver{
		Kind:        Kind,
		About:       "Kandji (Iru): its lock action, which makes each Mac's PIN; device facts from its inventory, answers polled from its device commands",
		NeedsAPIKey: true,
		// One device per lock request; the dispatcher sends them concurrently.
		Limits: server.Limits{MaxIDs: 1, MaxIDBytes: 1 << 10},
		// Kandji always pushes and has no command of mdmctl's own (no
		// DeviceInformation). It has no "already exists" answer, but the
		// adapter reads the device's command list before any resend of a
		// command that may have landed (MayHaveLanded) and reports a lock
		// it finds there queued: a resumed run is recognized, never
		// locked twice, which is what RecognizesResend promises --resume.
		Capabilities: server.Capabilities{Inventory: true, SerialNumbers: true, NoInformation: true, RecognizesResend: true},
		PlanLock:     PlanLock,
		Open:         open,
	})
}

// PlanLock says how Kandji carries a lock: message and phone number as
// given, the PIN made by Kandji (so the run escrows it); a PIN of the
// admin's or mdmctl's, or the network tether, it cannot take.
func PlanLock(l apple.DeviceLock, mayBeMac bool) (server.LockPlan, error) {
	switch {
	case l.PIN != "":
		return server.LockPlan{}, errors.New("the kandji kind cannot take a PIN (--pin, --pin-file, --pin-generate, MDMCTL_PIN): Kandji makes each Mac's unlock PIN itself and mdmctl escrows the one it returns (give --pin-escrow FILE)")
	case l.RequestRequiresNetworkTether:
		return server.LockPlan{}, errors.New("the kandji kind cannot send --network-tether: Kandji's lock action takes only a message and a phone number")
	}
	// Kandji makes a PIN for a Mac only.
	return server.LockPlan{ServerPIN: mayBeMac}, nil
}

func open(_ context.Context, cfg server.Config) (*server.Session, error) {
	if h := strings.ToLower(cfg.BaseURL.Hostname()); strings.HasSuffix(h, ".kandji.io") &&
		!strings.HasSuffix(h, ".api.kandji.io") && !strings.HasSuffix(h, ".api.eu.kandji.io") && cfg.Warn != nil {
		cfg.Warn(fmt.Sprintf("%s is not a Kandji API host: the server URL is the tenant's API URL from Settings > Access, https://TENANT.api.kandji.io (or TENANT.api.eu.kandji.io)", h))
	}
	base := cfg.BaseURL
	if p := strings.TrimRight(base.Path, "/"); strings.HasSuffix(p, "/api/v1") || strings.HasSuffix(p, "/api") {
		// The API URL copied with the API's own prefix: the paths carry it.
		u := *base
		u.Path = strings.TrimSuffix(strings.TrimSuffix(p, "/v1"), "/api")
		u.RawPath = ""
		base = &u
	}
	kc := &Client{BaseURL: base, Token: cfg.APIKey, HTTP: cfg.HTTP, Retry: cfg.Retry,
		Workers: min(max(cfg.Concurrency, 1), 8), Pace: NewPacer()}
	answers, closeSession := server.Poll(cfg, "polling Kandji for answers", kc.Watch)
	return &server.Session{
		Server:  kc,
		Name:    server.Origin(cfg.BaseURL),
		Close:   closeSession,
		Answers: answers,
		Serials: kc.Serials,
		Facts:   kc.Devices,
	}, nil
}
