package cmdutil

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
)

// Factory carries the dependencies commands take from their environment, so
// a test can give them buffers, a fake clock or an in-process server.
type Factory struct {
	IOStreams *iostreams.IOStreams
	Getenv    func(string) string
	Now       func() time.Time
	// ConfigPath is the config file for this run (--config, MDMCTL_CONFIG, default).
	ConfigPath func(flags *pflag.FlagSet) string
	// Settings resolves flags, environment and the selected context.
	Settings func(flags *pflag.FlagSet) (config.Settings, error)
	// Connect opens the server the settings name.
	Connect func(ctx context.Context, s config.Settings, opts connect.Options) (*connect.Connection, error)
	// OpenHistory opens the lock history the settings name; its errors
	// are usage errors (exit 2), since nothing was sent.
	OpenHistory func(s config.Settings) (*history.Store, error)
	// OSUser names who runs mdmctl, for the history.
	OSUser func() string
}
