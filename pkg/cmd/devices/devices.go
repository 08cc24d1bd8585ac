// Package devices implements `mdmctl devices`: questions to devices that
// lock nothing.
package devices

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// NewCmdDevices returns the devices command group.
func NewCmdDevices(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Ask devices about themselves, locking nothing",
	}
	cmd.AddCommand(NewCmdInspect(f, nil))
	return cmd
}

// InspectOptions are the parsed flags and the dependencies of one inspect run.
type InspectOptions struct {
	IO       *iostreams.IOStreams
	Settings func() (config.Settings, error)
	Connect  func(ctx context.Context, s config.Settings, opts connect.Options) (*connect.Connection, error)
	NewUUID  func() string

	IDs         []string
	Wait        time.Duration
	Output      string
	Concurrency int
	Connection  connect.Options
}

// NewCmdInspect returns `devices inspect`; runF replaces the run function in
// tests of flag parsing.
func NewCmdInspect(f *cmdutil.Factory, runF func(context.Context, *InspectOptions) error) *cobra.Command {
	opts := &InspectOptions{IO: f.IOStreams, Connect: f.Connect, NewUUID: apple.NewCommandUUID}
	cmd := &cobra.Command{
		Use:   "inspect ID...",
		Short: "Ask devices for their facts and say what the guard would do with a DeviceLock",
		Long: `Send DeviceInformation (the queries --preflight sends: OSVersion,
BuildVersion, ProductName, Model, ModelName, IsAppleSilicon,
PINRequiredForDeviceLock, ProvisioningUDID) to each device, wait up to --wait
for the answers, and print per device what it answered and what the Apple
silicon guard would do with a DeviceLock: lock, refuse (it would deactivate
the Mac), needs a PIN, or unknown (lock warns, --if-unknown=refuse refuses).
What the server's inventory says is weighed too, as lock weighs it.

Answers come back as for lock --wait: through mdmctl's webhook receiver
(--webhook-listen) for NanoMDM and MicroMDM, from the server for the sandbox
and Fleet. Nothing is locked. Exit 0 when every device answered and would be
locked, 6 when the guard would refuse one, 8 when one did not answer.`,
		Example: `  mdmctl devices inspect --context sandbox 2E8A1C3F-0B11-4D04-9A10-000000001104
  mdmctl devices inspect --webhook-listen 127.0.0.1:9099 --wait=1m MAC-1 MAC-2 -o json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return exitcode.Usagef("devices inspect needs at least one device ID")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				opts.IDs = append(opts.IDs, strings.Split(a, ",")...)
			}
			opts.Settings = func() (config.Settings, error) { return f.Settings(cmd.Flags()) }
			fl := cmd.Flags()
			opts.Connection.Timeout, _ = fl.GetDuration("timeout")
			opts.Connection.ConnectTimeout, _ = fl.GetDuration("connect-timeout")
			opts.Connection.Retries, _ = fl.GetInt("retries")
			opts.Connection.Debug, _ = fl.GetBool("debug")
			opts.Connection.Concurrency = opts.Concurrency
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return RunInspect(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&opts.Wait, "wait", 30*time.Second, "how long devices are given to answer")
	fl.StringVarP(&opts.Output, "output", "o", output.FormatText, "output format: text, json")
	fl.IntVar(&opts.Concurrency, "concurrency", 8, "requests in flight at once")
	fl.String("webhook-listen", "", "address of mdmctl's webhook receiver, e.g. 127.0.0.1:9099 (point NanoMDM's -webhook-url at it)")
	fl.String("webhook-hmac-key-file", "", "file holding the key NanoMDM signs webhooks with (-webhook-hmac-key)")
	fl.Bool("webhook-allow-unsigned", false, "let the receiver take unsigned events on an address other machines can reach (refused otherwise: anyone could forge an answer)")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{output.FormatText, output.FormatJSON}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// Verdicts: what the guard would do with a DeviceLock to the device.
const (
	VerdictLock     = "lock"
	VerdictRefuse   = "refuse"
	VerdictNeedsPIN = "needs-pin"
	VerdictUnknown  = "unknown"
)

// Inspection is one device's answer and the guard's verdict on it.
type Inspection struct {
	ID      string             `json:"id"`
	Verdict string             `json:"verdict"`
	Reason  string             `json:"reason,omitempty"`
	Facts   *apple.Information `json:"facts,omitempty"`
	// Problem says why the device gave no facts.
	Problem string `json:"problem,omitempty"`
}

// RunInspect asks every device, judges each on its answer, and prints.
func RunInspect(ctx context.Context, opts *InspectOptions) error {
	switch {
	case opts.Output != output.FormatText && opts.Output != output.FormatJSON:
		return exitcode.Usagef("invalid --output %q (want text or json)", opts.Output)
	case opts.Wait <= 0:
		return exitcode.Usagef("invalid --wait %s: must be positive", opts.Wait)
	case opts.Concurrency < 1:
		return exitcode.Usagef("invalid --concurrency %d: must be at least 1", opts.Concurrency)
	}
	targets, err := inspectTargets(opts.IDs)
	if err != nil {
		return err
	}
	settings, err := opts.Settings()
	if err != nil {
		return &exitcode.UsageError{Err: err}
	}
	if d, _ := server.Lookup(settings.Kind); d.CheckID != nil {
		for _, t := range targets {
			if err := d.CheckID(t.ID); err != nil {
				return exitcode.Usagef("invalid device ID: %v", err)
			}
		}
	}
	conn, err := opts.Connect(ctx, settings, opts.Connection)
	if err != nil {
		return err
	}
	defer conn.Close()
	if conn.Facts != nil {
		dispatch.ObserveInventory(ctx, targets, conn.Name+" inventory", conn.Facts, func(msg string) { output.Warn(opts.IO, msg) })
	}
	cmds, err := dispatch.PlanInformation(targets, conn.Limits, opts.NewUUID)
	if err != nil {
		return &exitcode.UsageError{Err: err}
	}
	inquiry := dispatch.NewInquiry(cmds)
	feed := connect.NewAnswerFeed(conn, settings)
	defer feed.Close(ctx)
	where := conn.Name
	if !conn.Synchronous {
		warning, err := feed.Check()
		if err != nil {
			return err
		}
		if warning != "" {
			output.Warn(opts.IO, warning)
		}
		url, err := feed.Subscribe(inquiry.Collector, "devices inspect")
		if err != nil {
			return err
		}
		if url != "" {
			where = url
		}
	}
	noun := "devices"
	if len(targets) == 1 {
		noun = "device"
	}
	fmt.Fprintf(opts.IO.ErrOut, "asking %d %s for their facts (DeviceInformation), answers from %s within %s\n", len(targets), noun, where, opts.Wait)
	_ = inquiry.Send(ctx, conn.Server, dispatch.Options{Concurrency: opts.Concurrency, NewUUID: opts.NewUUID})
	replies := inquiry.Wait(ctx, opts.Wait)
	if ctx.Err() != nil {
		return &exitcode.CancelError{Interrupted: true}
	}
	results := make([]Inspection, len(targets))
	for i, t := range targets {
		results[i] = judge(t, replies[t.ID])
	}
	if err := printInspections(opts, results); err != nil {
		return err
	}
	return &exitcode.ExitError{Code: exitCode(results)}
}

// inspectTargets checks the IDs as lock does; an ID twice is asked once.
func inspectTargets(ids []string) ([]*dispatch.Target, error) {
	none, lock := &apple.Device{}, &apple.DeviceLock{}
	seen := map[string]bool{}
	var ts []*dispatch.Target
	for _, id := range ids {
		if err := apple.ValidateTargetID(id); err != nil {
			return nil, exitcode.Usagef("invalid device ID: %v", err)
		}
		if !seen[id] {
			seen[id] = true
			ts = append(ts, &dispatch.Target{ID: id, Facts: none, Lock: lock})
		}
	}
	return ts, nil
}

// judge applies the guard to what is known after the device's reply, with
// no PIN: a Mac that needs one is told apart from one that can be locked.
func judge(t *dispatch.Target, reply dispatch.Reply) Inspection {
	in := Inspection{ID: t.ID, Facts: reply.Information, Problem: reply.Problem}
	if reply.Information != nil {
		dispatch.Answered(t, *reply.Information)
	} else {
		dispatch.Assess([]*dispatch.Target{t})
	}
	a := t.Assessment
	switch {
	case a.Risk == apple.RiskDeactivation:
		in.Verdict, in.Reason = VerdictRefuse, a.Reason
	case reply.Information != nil && dispatch.NeedsPIN(t, *reply.Information):
		in.Verdict, in.Reason = VerdictNeedsPIN, dispatch.PINRequired
	case a.Risk == apple.RiskUnknown:
		in.Verdict, in.Reason = VerdictUnknown, a.Reason
	default:
		in.Verdict, in.Reason = VerdictLock, a.Reason
	}
	return in
}

// exitCode: 6 when the guard would refuse a device, else 8 when one gave
// no facts, else 0.
func exitCode(results []Inspection) int {
	code := exitcode.OK
	for _, r := range results {
		switch {
		case r.Verdict == VerdictRefuse:
			return exitcode.Refused
		case r.Facts == nil:
			code = exitcode.NoAnswer
		}
	}
	return code
}

func printInspections(opts *InspectOptions, results []Inspection) error {
	if opts.Output == output.FormatJSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Devices []Inspection `json:"devices"`
		}{results})
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVERDICT\tFACTS\tWHY")
	for _, r := range results {
		facts := "no answer: " + r.Problem
		if r.Facts != nil {
			facts = output.Facts(*r.Facts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", output.Escape(r.ID), r.Verdict, output.Escape(facts), output.Escape(orDash(r.Reason)))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
