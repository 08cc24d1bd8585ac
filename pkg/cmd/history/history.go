// Package history implements `mdmctl history`: the locks mdmctl has sent,
// from the lock history.
package history

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/output"
)

// Options are the parsed flags and the dependencies of `mdmctl history`.
type Options struct {
	IO          *iostreams.IOStreams
	Settings    func() (config.Settings, error)
	OpenHistory func(config.Settings) (*history.Store, error)
	Now         func() time.Time

	Devices []string
	Since   string
	Output  string
}

// NewCmdHistory returns the history command; runF replaces the run
// function in tests of flag parsing.
func NewCmdHistory(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, OpenHistory: f.OpenHistory, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the locks mdmctl has sent",
		Long: `List the locks mdmctl has sent, oldest first, from the lock history
($XDG_STATE_HOME/mdmctl/history.db, or --history FILE, or MDMCTL_HISTORY).

Every lock a run sends is recorded before its request goes out: the server
(without user or password), context and kind, the device, its serial when
known, the CommandUUID, the time, the OS user, where its PIN is escrowed
(never the PIN), the outcome and, once it comes, the device's answer.
mdmctl status updates the locks whose answer came later.

The outcome "sending" is a lock whose request was going out when the run
ended without an answer (a crash): it may have reached the server.`,
		Example: `  mdmctl history
  mdmctl history --device 00008020-000915083C80012E
  mdmctl history --since 24h -o csv > locks.csv
  mdmctl history --since 7d -o jsonl | jq -r 'select(.outcome == "queued") | .device'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Settings = func() (config.Settings, error) { return f.Settings(cmd.Flags()) }
			opts.Devices = splitList(opts.Devices)
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.Devices, "device", nil, "only this device's locks (repeatable, comma-separated)")
	fl.StringVar(&opts.Since, "since", "", "only locks sent within this long, e.g. 90m, 24h, 7d")
	fl.StringVarP(&opts.Output, "output", "o", output.FormatText, "output format: text, json, jsonl, csv")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(output.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("device", CompleteDevices(f))
	return cmd
}

// Run lists the locks the flags select.
func Run(ctx context.Context, opts *Options) error {
	if err := CheckFormat(opts.Output); err != nil {
		return err
	}
	filter := history.Filter{Devices: opts.Devices}
	if opts.Since != "" {
		d, err := ParseSince(opts.Since)
		if err != nil {
			return &exitcode.UsageError{Err: err}
		}
		filter.Since = opts.Now().Add(-d)
	}
	_, store, err := Open(opts.Settings, opts.OpenHistory)
	if err != nil {
		return err
	}
	defer store.Close()
	locks, err := store.List(ctx, filter)
	if err != nil {
		return err
	}
	if err := output.Locks(opts.Output, opts.IO, locks); err != nil {
		return err
	}
	switch n := len(locks); {
	case n == 0:
		fmt.Fprintln(opts.IO.ErrOut, "no locks recorded")
	case n == 1:
		fmt.Fprintln(opts.IO.ErrOut, "1 lock")
	default:
		fmt.Fprintf(opts.IO.ErrOut, "%d locks\n", n)
	}
	return nil
}

// CheckFormat refuses an -o value the locks cannot be printed in.
func CheckFormat(format string) error {
	if !slices.Contains(output.Formats, format) {
		return exitcode.Usagef("invalid --output %q (want text, json, jsonl or csv)", format)
	}
	return nil
}

// Open resolves the settings and opens the history they name.
func Open(settings func() (config.Settings, error), open func(config.Settings) (*history.Store, error)) (config.Settings, *history.Store, error) {
	s, err := settings()
	if err != nil {
		return s, nil, &exitcode.UsageError{Err: err}
	}
	store, err := open(s)
	return s, store, err
}

// ParseSince reads a positive duration as time.ParseDuration does, and
// also whole days ("7d"), which is how far back admins look.
func ParseSince(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid --since %q: want a positive duration such as 90m, 24h or 7d", s)
	}
	return d, nil
}

// splitList trims the values of a comma-separated flag and drops empty ones.
func splitList(values []string) []string {
	var out []string
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// CompleteDevices completes the device IDs the history holds.
func CompleteDevices(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		s, err := f.Settings(cmd.Flags())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return RecordedDevices(cmd.Context(), f.OpenHistory, s, ""), cobra.ShellCompDirectiveNoFileComp
	}
}

// RecordedDevices lists the devices the history holds locks for on server
// (any server when ""); nothing when it cannot be read, since completion
// never fails loudly.
func RecordedDevices(ctx context.Context, open func(config.Settings) (*history.Store, error), s config.Settings, server string) []string {
	if s.History == "" || open == nil {
		return nil
	}
	if _, err := os.Stat(s.History); err != nil {
		return nil // no history yet: completing creates none
	}
	if ctx == nil {
		ctx = context.Background()
	}
	store, err := open(s)
	if err != nil {
		return nil
	}
	defer store.Close()
	devs, _ := store.Devices(ctx, server)
	return devs
}
