// Package sandboxkind is the server kind of the built-in sandbox: a real
// NanoMDM and its simulated devices inside mdmctl, reached without a socket.
package sandboxkind

import (
	"context"
	"net/url"
	"path/filepath"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/httpclient"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/server/nanomdm"
)

// Kind names the sandbox in settings; it is also its built-in context.
const Kind = "sandbox"

// Preflight is the sandbox's default --preflight: its devices answer at
// once, so asking them first costs nothing.
const Preflight = 30 * time.Second

func init() {
	server.Register(server.Driver{
		Kind:         Kind,
		About:        "the built-in sandbox: NanoMDM and simulated devices inside mdmctl",
		InProcess:    true,
		Preflight:    Preflight,
		Limits:       nanomdm.Limits,
		Capabilities: server.Capabilities{SkipPush: true, Inventory: true, SerialNumbers: true, RecognizesResend: true},
		DeviceIDs: func() [][2]string {
			ids := make([][2]string, len(sandbox.Members))
			for i, m := range sandbox.Members {
				ids[i] = [2]string{m.Facts.UDID, m.Facts.Name + ": " + m.Shows}
			}
			return ids
		},
		Open: open,
	})
}

func open(_ context.Context, cfg server.Config) (*server.Session, error) {
	opts := sandbox.Options{}
	if cfg.StateDir != "" {
		opts.AnswersFile = filepath.Join(cfg.StateDir, "sandbox-answers.jsonl")
	}
	sb, err := sandbox.Start(opts)
	if err != nil {
		return nil, err
	}
	hc, err := httpclient.New(httpclient.Options{Transport: sb.Transport(), Timeout: cfg.Timeout, Debug: cfg.Debug})
	if err != nil {
		sb.Close()
		return nil, err
	}
	base, _ := url.Parse(sandbox.BaseURL)
	return &server.Session{
		Server:  &nanomdm.Client{BaseURL: base, APIKey: sandbox.APIKey, HTTP: hc, Retry: server.Retry{}},
		Name:    Kind,
		Close:   sb.Close,
		Answers: sb.Subscribe,
		Facts: func(ctx context.Context, ids []string) (map[string]apple.Device, error) {
			return sb.Facts(ctx, ids), nil // in memory: nothing to fail
		},
		Serials: serials,
	}, nil
}

// serials finds the sandbox's devices by serial number.
func serials(_ context.Context, want []string) (map[string]string, error) {
	ids := make(map[string]string, len(want))
	for _, serial := range want {
		for _, m := range sandbox.Members {
			if m.Facts.Serial == serial {
				ids[serial] = m.Facts.UDID
			}
		}
	}
	return ids, nil
}
