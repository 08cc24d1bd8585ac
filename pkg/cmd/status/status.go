// Package status implements `mdmctl status`: what became of the locks the
// history records, asked from the server where it keeps answers, or
// listened for on the webhook receiver.
package status

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	historycmd "github.com/mdmctl/mdmctl/pkg/cmd/history"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// askWindow is how long status gives a server that keeps answers (the
// sandbox, Fleet) to hand them over when --wait is not given.
const askWindow = 10 * time.Second

// Options are the parsed flags and the dependencies of `mdmctl status`.
type Options struct {
	IO          *iostreams.IOStreams
	Settings    func() (config.Settings, error)
	Connect     func(ctx context.Context, s config.Settings, opts connect.Options) (*connect.Connection, error)
	OpenHistory func(config.Settings) (*history.Store, error)
	Now         func() time.Time

	IDs            []string
	Wait           time.Duration
	Output         string
	ConnectOptions connect.Options
}

// NewCmdStatus returns the status command; runF replaces the run function
// in tests of flag parsing.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Connect: f.Connect, OpenHistory: f.OpenHistory, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "status [ID...]",
		Short: "Tell what became of recorded locks, and record it",
		Long: `Tell what became of the locks mdmctl sent to the current server: for each
ID its latest recorded lock, or without IDs every lock still awaiting its
device's answer (see mdmctl history).

Locks that still await an answer are asked for: the sandbox and Fleet keep
the devices' answers and are asked (for up to 10s, or --wait); NanoMDM and
MicroMDM report answers only to a webhook, so with --wait mdmctl's webhook
receiver listens that long (--webhook-listen, as for lock --wait) while the
devices check in. NanoMDM does not keep or resend webhook events: an answer
that came while nothing listened is not heard again. Each answer is
recorded in the history.

Exit codes are those of lock --wait: 0 when every lock was acknowledged,
7 when a device answered Error or CommandFormatError, 8 when some lock
still has no answer.`,
		Example: `  mdmctl status 00008020-000915083C80012E
  mdmctl status --context sandbox
  mdmctl status --wait=10m --webhook-listen 0.0.0.0:9099 --webhook-hmac-key-file hook.key -o csv`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckAttachedDurations(cmd, args, "wait"); err != nil {
				return err
			}
			opts.IDs = args
			opts.Settings = func() (config.Settings, error) { return f.Settings(cmd.Flags()) }
			opts.ConnectOptions.Timeout, _ = cmd.Flags().GetDuration("timeout")
			opts.ConnectOptions.ConnectTimeout, _ = cmd.Flags().GetDuration("connect-timeout")
			opts.ConnectOptions.Retries, _ = cmd.Flags().GetInt("retries")
			opts.ConnectOptions.Debug, _ = cmd.Flags().GetBool("debug")
			opts.ConnectOptions.Concurrency = 8
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.Wait, "wait", 0, "listen (or ask) this long for the devices' answers (--wait alone: 2m)")
	fl.Lookup("wait").NoOptDefVal = "2m"
	fl.String("webhook-listen", "", "address of mdmctl's webhook receiver for --wait (point NanoMDM's -webhook-url at it)")
	fl.String("webhook-hmac-key-file", "", "file holding the key NanoMDM signs webhooks with (-webhook-hmac-key)")
	fl.StringVarP(&opts.Output, "output", "o", output.FormatText, "output format: text, json, jsonl, csv")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(output.Formats, cobra.ShellCompDirectiveNoFileComp))
	cmd.ValidArgsFunction = func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		s, err := f.Settings(cmd.Flags())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return historycmd.RecordedDevices(cmd.Context(), f.OpenHistory, s, connect.HistoryServer(s)), cobra.ShellCompDirectiveNoFileComp
	}
	return cmd
}

// Run looks the locks up, asks or listens for the answers still missing,
// records them and prints every lock once.
func Run(ctx context.Context, opts *Options) error {
	if err := historycmd.CheckFormat(opts.Output); err != nil {
		return err
	}
	settings, store, err := historycmd.Open(opts.Settings, opts.OpenHistory)
	if err != nil {
		return err
	}
	defer store.Close()
	kind, _ := server.Lookup(settings.Kind)
	if kind.NoStatus && opts.Wait > 0 {
		return exitcode.Usagef("--wait: the %s kind cannot read back what became of a command (its API has no command status)", settings.Kind)
	}
	origin := connect.HistoryServer(settings)
	if origin == "" {
		return exitcode.Usagef("no server configured: use --server, MDMCTL_SERVER or a context, as for mdmctl lock")
	}
	locks, err := selectLocks(ctx, store, origin, opts.IDs)
	if err != nil {
		return err
	}
	if len(locks) == 0 {
		fmt.Fprintf(opts.IO.ErrOut, "no lock awaits an answer on %s (mdmctl history lists them all)\n", origin)
		return nil
	}
	waited, err := collect(ctx, opts, settings, kind, store, locks)
	if err != nil {
		return err
	}
	interrupted := ctx.Err() != nil
	if err := output.Locks(opts.Output, opts.IO, locks); err != nil {
		return err
	}
	summary := report.Summary{}
	for _, l := range locks {
		o := l.Outcome
		if l.Awaits() {
			o = report.NoAnswer // as a --wait run ends: the command stays queued
		}
		summary.Add(o)
	}
	fmt.Fprintln(opts.IO.ErrOut, output.SummaryLine(report.Run{Summary: summary}, opts.IO.ColorErr()))
	if !waited && summary[report.NoAnswer] > 0 {
		if kind.NoStatus {
			fmt.Fprintf(opts.IO.ErrOut, "%s keeps no command status to ask for: check the devices in its console\n", settings.Kind)
		} else {
			fmt.Fprintf(opts.IO.ErrOut, "%s keeps no answers to ask for: --wait=5m listens for them on the webhook receiver\n", settings.Kind)
		}
	}
	if code := exitcode.OfRun(summary, interrupted, nil); code != exitcode.OK {
		return &exitcode.ExitError{Code: code}
	}
	return nil
}

// selectLocks is the latest lock of each of ids on server, or without ids
// every latest lock there that still awaits its answer. An ID with no lock
// recorded is bad input.
func selectLocks(ctx context.Context, store *history.Store, server string, ids []string) ([]history.Lock, error) {
	if len(ids) > 0 {
		latest, err := store.Latest(ctx, server, ids)
		if err != nil {
			return nil, err
		}
		var locks []history.Lock
		seen := map[string]bool{}
		for _, id := range ids {
			l, ok := latest[id]
			if !ok {
				return nil, exitcode.Usagef("no lock recorded for %s on %s (mdmctl history lists the recorded locks)", id, server)
			}
			if !seen[id] {
				seen[id] = true
				locks = append(locks, l)
			}
		}
		return locks, nil
	}
	all, err := store.List(ctx, history.Filter{Server: server})
	if err != nil {
		return nil, err
	}
	latest := map[string]history.Lock{}
	for _, l := range all {
		latest[l.Device] = l
	}
	var locks []history.Lock
	for _, l := range latest {
		if l.Awaits() {
			locks = append(locks, l)
		}
	}
	sort.Slice(locks, func(a, b int) bool {
		return locks[a].Time.Before(locks[b].Time) || (locks[a].Time.Equal(locks[b].Time) && locks[a].ID < locks[b].ID)
	})
	return locks, nil
}

// collect asks or listens for the answers of the locks that await one and
// records each in the history and in locks. It reports whether it could
// ask or listen at all.
func collect(ctx context.Context, opts *Options, settings config.Settings, kind server.Driver, store *history.Store, locks []history.Lock) (bool, error) {
	byKey := map[[2]string]int{}
	collector := webhook.NewCollector()
	for i, l := range locks {
		if l.Awaits() {
			byKey[[2]string{l.CommandUUID, l.Device}] = i
			collector.Expect(l.CommandUUID, l.Device)
			// A vendor's watcher asks about this command, not the device's newest.
			collector.Refer(l.CommandUUID, l.Device, l.Reference)
		}
	}
	if len(byKey) == 0 {
		return true, nil
	}
	if kind.NoStatus {
		return false, nil // nothing to ask: Run refused --wait
	}
	conn, err := opts.Connect(ctx, settings, opts.ConnectOptions)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	wait := opts.Wait
	if conn.Answers == nil && wait == 0 {
		return false, nil // a webhook kind: only --wait can hear anything
	}
	if wait == 0 {
		wait = askWindow
	}
	feed := connect.NewAnswerFeed(conn, settings)
	defer feed.Close(ctx)
	var recordErr error
	collector.OnAnswer = func(a webhook.Answer) {
		i := byKey[[2]string{a.CommandUUID, a.ID}]
		resp := a.Response
		at := opts.Now().UTC()
		locks[i].Outcome, locks[i].Response, locks[i].AnsweredAt, locks[i].Error = dispatch.AnswerOutcome(resp), &resp, at, ""
		if err := store.Record(context.Background(), []history.Update{{Server: locks[i].Server, CommandUUID: a.CommandUUID,
			Device: a.ID, Outcome: locks[i].Outcome, Response: &resp, At: at}}); err != nil && recordErr == nil {
			recordErr = err
		}
	}
	url, err := feed.Subscribe(collector, "status --wait")
	if err != nil {
		return false, err
	}
	where := "from " + conn.Name
	if url != "" {
		where = "at " + url
	}
	fmt.Fprintf(opts.IO.ErrOut, "waiting up to %s for %s %s (Ctrl-C stops waiting)\n", wait, plural(len(byKey), "answer"), where)
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_ = collector.Wait(waitCtx)
	if recordErr != nil {
		output.Warn(opts.IO, recordErr.Error()+": the history misses some answers")
	}
	return true, nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
