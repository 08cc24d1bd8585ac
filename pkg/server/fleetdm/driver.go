package fleetdm

import (
	"context"
	"fmt"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// Kind names Fleet in settings.
const Kind = "fleet"

func init() {
	server.Register(server.Driver{
		Kind:        Kind,
		About:       "Fleet: its own lock for Macs (it makes the PIN), its MDM command API otherwise; device facts from its hosts, answers polled",
		NeedsAPIKey: true,
		// The IDs go in a JSON body: no URL to keep short, only the count
		// per request is bounded.
		Limits: server.Limits{MaxIDs: 1000, MaxIDBytes: 1 << 20},
		// Fleet always pushes, and has no "already exists" answer: its
		// adapter checks for its command only on its own retries.
		Capabilities: server.Capabilities{Inventory: true, SerialNumbers: true},
		PlanLock:     planLock,
		Open:         open,
	})
}

func open(_ context.Context, cfg server.Config) (*server.Session, error) {
	fc := &Client{BaseURL: cfg.BaseURL, Token: cfg.APIKey, HTTP: cfg.HTTP, Retry: cfg.Retry}
	answers, closeSession := watch(fc, cfg)
	return &server.Session{
		Server:  fc,
		Name:    server.Origin(cfg.BaseURL),
		Close:   closeSession,
		Answers: answers,
		Serials: func(ctx context.Context, serials []string) (map[string]string, error) {
			return fc.Serials(ctx, serials, cfg.Concurrency)
		},
		Facts: func(ctx context.Context, ids []string) map[string]apple.Device {
			known, err := fc.Devices(ctx, ids, cfg.Concurrency)
			if err != nil {
				cfg.Warn(fmt.Sprintf("reading device facts from Fleet: %v; the guard treats the devices it could not read as unknown", err))
			}
			return known
		},
	}, nil
}

// watch polls Fleet for answers (it has no webhook for them) from the
// moment a run starts waiting until the session closes; each distinct
// polling error is warned about once.
func watch(fc *Client, cfg server.Config) (func(*webhook.Collector), func()) {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	warned := map[string]bool{}
	onError := func(err error) { // called from the one polling goroutine
		if msg := err.Error(); !warned[msg] {
			warned[msg] = true
			cfg.Warn("polling Fleet for answers: " + msg)
		}
	}
	answers := func(col *webhook.Collector) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fc.Watch(ctx, col, onError)
		}()
	}
	closeSession := func() {
		stop()
		wg.Wait()
		cfg.HTTP.CloseIdleConnections()
	}
	return answers, closeSession
}
