// Package lock implements `mdmctl lock`: DeviceLock for one device or a fleet.
package lock

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/fleet"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/output"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// EnvPIN is the environment variable a PIN can come from.
const EnvPIN = "MDMCTL_PIN"

// Options are the parsed flags and the dependencies of one lock run.
type Options struct {
	IO       *iostreams.IOStreams
	Getenv   func(string) string
	Settings func() (config.Settings, error)
	Connect  func(ctx context.Context, s config.Settings, opts cmdutil.ConnectOptions) (*cmdutil.Connection, error)
	NewUUID  func() string

	IDs           []string
	Message       string
	Phone         string
	PIN           string
	PINFile       string
	NetworkTether bool
	CommandUUID   string

	Platform          string
	Model             string
	OSVersion         string
	AllowDeactivation bool

	NoPush      bool
	DryRun      bool
	ShowPINs    bool
	Output      string
	Concurrency int
	Timeout     time.Duration
	Debug       bool
}

// NewCmdLock returns the lock command; runF replaces the run function in
// tests of flag parsing.
func NewCmdLock(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Getenv: f.Getenv, Connect: f.Connect, NewUUID: apple.NewCommandUUID}
	var udids []string
	cmd := &cobra.Command{
		Use:   "lock [UDID...]",
		Short: "Lock devices with Apple's DeviceLock command",
		Long: `Lock devices with Apple's DeviceLock MDM command.

mdmctl builds the DeviceLock command plist, checks it against the Apple
silicon rule (DeviceLock deactivates an Apple silicon Mac running macOS before
11.5), queues it on the configured MDM server and prints, per device, what the
server did with it.

Targets come from --udid (repeatable, comma-separated) and arguments. The PIN
(macOS only, six digits) can come from --pin, --pin-file or MDMCTL_PIN, so it
never needs to be on the command line.`,
		Example: `  mdmctl lock --udid 00008020-000915083C80012E --message "Return to IT" --phone 408-555-5555
  MDMCTL_PIN=$(cat pin) mdmctl lock --udid MAC-UDID --model MacBookAir10,1 --os-version 14.5
  mdmctl lock --dry-run --udid X --message "Lock Message" --command-uuid 0001_DeviceLock`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IDs = append(splitIDs(udids), args...)
			opts.Settings = func() (config.Settings, error) { return f.Settings(cmd.Flags()) }
			opts.Timeout, _ = cmd.Flags().GetDuration("timeout")
			opts.Debug, _ = cmd.Flags().GetBool("debug")
			if !cmd.Flags().Changed("pin") {
				opts.PIN = ""
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&udids, "udid", nil, "device UDID or enrollment ID (repeatable, comma-separated)")
	fl.StringVar(&opts.Message, "message", "", "message on the Lock Screen")
	fl.StringVar(&opts.Phone, "phone", "", "phone number on the Lock Screen")
	fl.StringVar(&opts.PIN, "pin", "", "six-digit Find My PIN for Macs (prefer --pin-file or "+EnvPIN+")")
	fl.StringVar(&opts.PINFile, "pin-file", "", "file holding the six-digit PIN")
	fl.BoolVar(&opts.NetworkTether, "network-tether", false, "set RequestRequiresNetworkTether")
	fl.StringVar(&opts.CommandUUID, "command-uuid", "", "CommandUUID to use (default: a new uppercase UUID)")
	fl.StringVar(&opts.Platform, "platform", "", "device platform: macos, ios, ipados, visionos, watchos")
	fl.StringVar(&opts.Model, "model", "", "model identifier, e.g. MacBookAir10,1")
	fl.StringVar(&opts.OSVersion, "os-version", "", "OS version, e.g. 11.4.1")
	fl.BoolVar(&opts.AllowDeactivation, "allow-deactivation", false, "send even to a Mac DeviceLock would deactivate")
	fl.BoolVar(&opts.NoPush, "no-push", false, "queue without an APNs push")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the command plist and send nothing")
	fl.BoolVar(&opts.ShowPINs, "show-pins", false, "print PINs in the output (they are redacted otherwise)")
	fl.StringVarP(&opts.Output, "output", "o", output.FormatText, "output format: text, json, jsonl")
	fl.IntVar(&opts.Concurrency, "concurrency", 8, "requests in flight at once")
	_ = cmd.RegisterFlagCompletionFunc("platform", cobra.FixedCompletions(platformNames(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(output.Formats, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func platformNames() []string {
	names := make([]string, len(apple.Platforms))
	for i, p := range apple.Platforms {
		names[i] = string(p)
	}
	return names
}

func splitIDs(values []string) []string {
	var ids []string
	for _, v := range values {
		ids = append(ids, strings.Split(v, ",")...)
	}
	return ids
}

// Run does the work: validate everything, apply the guard, then send (or
// print, with --dry-run) and report every device.
func Run(ctx context.Context, opts *Options) error {
	lock, err := opts.lockValues()
	if err != nil {
		return err
	}
	facts, err := opts.facts()
	if err != nil {
		return err
	}
	if opts.Concurrency < 1 {
		return cmdutil.Usagef("invalid --concurrency %d: must be at least 1", opts.Concurrency)
	}
	if opts.CommandUUID != "" {
		if err := apple.ValidateText(opts.CommandUUID); err != nil || strings.TrimSpace(opts.CommandUUID) != opts.CommandUUID {
			return cmdutil.Usagef("invalid --command-uuid %q: must be printable text without surrounding spaces", opts.CommandUUID)
		}
	}
	ids, err := dedupe(opts.IDs)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return cmdutil.Usagef("no target: give --udid or UDIDs as arguments")
	}
	targets := make([]fleet.Target, len(ids))
	for i, id := range ids {
		targets[i] = fleet.Target{ID: id, Facts: facts, Lock: lock}
	}
	return execute(ctx, opts, fleet.Assess(targets))
}

// lockValues reads and validates the command's values; the PIN comes from
// --pin, --pin-file or MDMCTL_PIN and is never echoed.
func (opts *Options) lockValues() (apple.DeviceLock, error) {
	if err := apple.ValidateText(opts.Message); err != nil {
		return apple.DeviceLock{}, cmdutil.Usagef("invalid --message: %v", err)
	}
	if err := apple.ValidateText(opts.Phone); err != nil {
		return apple.DeviceLock{}, cmdutil.Usagef("invalid --phone: %v", err)
	}
	pin, source := opts.PIN, "--pin"
	if opts.PINFile != "" {
		if pin != "" {
			return apple.DeviceLock{}, cmdutil.Usagef("give the PIN once: --pin or --pin-file")
		}
		data, err := os.ReadFile(opts.PINFile)
		if err != nil {
			return apple.DeviceLock{}, cmdutil.Usagef("invalid --pin-file %s: %v", opts.PINFile, cmdutil.PathErr(err))
		}
		pin, source = strings.TrimRight(string(data), "\r\n"), "--pin-file "+opts.PINFile
	}
	if pin == "" {
		pin, source = opts.Getenv(EnvPIN), EnvPIN
	}
	if pin != "" {
		if err := apple.ValidatePIN(pin); err != nil {
			return apple.DeviceLock{}, cmdutil.Usagef("invalid PIN from %s: %v", source, err)
		}
	}
	return apple.DeviceLock{PIN: pin, Message: opts.Message, PhoneNumber: opts.Phone, RequestRequiresNetworkTether: opts.NetworkTether}, nil
}

func (opts *Options) facts() (apple.Device, error) {
	var d apple.Device
	p, err := apple.ParsePlatform(opts.Platform)
	if err != nil {
		return d, cmdutil.Usagef("invalid --platform: %v", err)
	}
	d.Platform = p
	if opts.OSVersion != "" {
		if d.OSVersion, err = apple.ParseVersion(opts.OSVersion); err != nil {
			return d, cmdutil.Usagef("invalid --os-version: %v", err)
		}
	}
	if opts.Model != "" {
		if err := apple.ValidateModel(opts.Model); err != nil {
			return d, cmdutil.Usagef("invalid --model: %v", err)
		}
		d.Model = opts.Model
	}
	if err := apple.CheckConsistent(d); err != nil {
		return d, cmdutil.Usagef("conflicting device facts: %v", err)
	}
	return d, nil
}

// dedupe validates every ID and drops repeats, keeping the first position.
func dedupe(ids []string) ([]string, error) {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := apple.ValidateTargetID(id); err != nil {
			return nil, cmdutil.Usagef("invalid target: %v", err)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

func execute(ctx context.Context, opts *Options, assessed []fleet.Assessed) error {
	io := opts.IO
	warn := func(msg string) { fmt.Fprintln(io.ErrOut, io.ColorErr().Yellow("warning: "+msg)) }

	var send []fleet.Assessed
	var refused []fleet.Assessed
	unknownRisk := 0
	for _, a := range assessed {
		switch {
		case a.Assessment.Risk == apple.RiskDeactivation && !opts.AllowDeactivation:
			refused = append(refused, a)
			continue
		case a.Assessment.Risk == apple.RiskDeactivation:
			warn(fmt.Sprintf("%s: sending despite the risk (--allow-deactivation): %s", a.ID, a.Assessment.Reason))
		case a.Assessment.Risk == apple.RiskUnknown:
			unknownRisk++
		}
		send = append(send, a)
	}
	if len(refused) > 0 && len(send) == 0 {
		a := refused[0]
		return &cmdutil.RefusedError{Err: fmt.Errorf("refusing to lock %s: %s; nothing was sent (--allow-deactivation overrides)",
			describeTargets(refused), a.Assessment.Reason)}
	}
	if unknownRisk > 0 {
		warn(fmt.Sprintf("device facts unknown for %s: %s. Give --platform, --model and --os-version to let mdmctl check",
			plural(unknownRisk, "device"), apple.DeactivationRule))
	}
	for _, note := range distinctNotes(send) {
		warn(note)
	}

	printer, err := newPrinter(opts)
	if err != nil {
		return err
	}

	var conn *cmdutil.Connection
	limits := fleet.DefaultLimits
	if !opts.DryRun {
		settings, err := opts.Settings()
		if err != nil {
			return &cmdutil.UsageError{Err: err}
		}
		for _, w := range settings.Warnings {
			warn(w)
		}
		conn, err = opts.Connect(ctx, settings, cmdutil.ConnectOptions{Concurrency: opts.Concurrency, Timeout: opts.Timeout, Debug: opts.Debug})
		if err != nil {
			return err
		}
		defer conn.Close()
		limits = conn.Limits
	}
	cmds, err := fleet.Plan(send, limits, opts.NewUUID, opts.CommandUUID)
	if err != nil {
		return &cmdutil.UsageError{Err: err}
	}

	run := report.Run{RequestType: apple.RequestTypeDeviceLock, DryRun: opts.DryRun, Summary: report.Summary{}}
	if len(cmds) == 1 {
		run.CommandUUID = cmds[0].UUID
	}
	emit := func(d report.Device) {
		run.Summary.Add(d.Outcome)
		_ = printer.Device(d)
	}
	for _, a := range refused {
		emit(report.Device{ID: a.ID, Source: a.Source, Outcome: report.Refused, Error: a.Assessment.Reason})
	}

	if opts.DryRun {
		if err := printPlan(opts, cmds, emit); err != nil {
			return err
		}
		return printer.End(run)
	}

	run.Server = conn.Name
	sendErr := fleet.Send(ctx, context.WithoutCancel(ctx), conn.Server, cmds, fleet.Options{NoPush: opts.NoPush, Concurrency: opts.Concurrency}, emit)
	if err := printer.End(run); err != nil {
		return err
	}
	if code := cmdutil.RunExitCode(run.Summary, false, sendErr); code != cmdutil.ExitOK {
		if code == cmdutil.ExitAuth || code == cmdutil.ExitUnavailable {
			// The devices' lines carry the error; say once which it was.
			fmt.Fprintln(io.ErrOut, io.ColorErr().Red("error: "+sendErr.Error()))
		}
		return &cmdutil.ExitError{Code: code}
	}
	return nil
}

// newPrinter picks the printer for -o. A text dry run writes its plan lines
// to stderr, keeping stdout for the plists; -o plist prints plists alone.
func newPrinter(opts *Options) (output.Printer, error) {
	streams := opts.IO
	switch {
	case opts.Output == formatPlist && !opts.DryRun:
		return nil, cmdutil.Usagef("invalid --output plist: it goes with --dry-run")
	case opts.Output == formatPlist:
		return output.Discard{}, nil
	case opts.DryRun && (opts.Output == output.FormatText || opts.Output == ""):
		errOnly := *streams
		errOnly.Out = streams.ErrOut
		streams = &errOnly
	}
	p, err := output.New(opts.Output, streams)
	if err != nil {
		return nil, &cmdutil.UsageError{Err: fmt.Errorf("invalid --output: %v", err)}
	}
	return p, nil
}

// formatPlist prints the command plists of a dry run and nothing else.
const formatPlist = "plist"

// printPlan reports each device as planned and, for text and plist output,
// writes each command's plist to stdout, PINs redacted unless --show-pins.
func printPlan(opts *Options, cmds []fleet.Command, emit fleet.Emit) error {
	withPlists := opts.Output == output.FormatText || opts.Output == "" || opts.Output == formatPlist
	redacted := false
	for _, c := range cmds {
		for _, t := range c.Targets {
			d := report.Device{ID: t.ID, Source: t.Source, Outcome: report.Planned, CommandUUID: c.UUID}
			if opts.ShowPINs {
				d.PIN = c.Lock.PIN
			}
			emit(d)
		}
		if !withPlists {
			continue
		}
		payload := c.Payload
		if c.Lock.PIN != "" && !opts.ShowPINs {
			payload, redacted = apple.RedactPIN(payload), true
		}
		if _, err := opts.IO.Out.Write(payload); err != nil {
			return err
		}
		fmt.Fprintln(opts.IO.Out)
	}
	if redacted {
		fmt.Fprintln(opts.IO.ErrOut, "note: PIN redacted from the plist; --show-pins prints it")
	}
	return nil
}

func describeTargets(ts []fleet.Assessed) string {
	if len(ts) == 1 {
		return ts[0].ID
	}
	return plural(len(ts), "device")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// distinctNotes lists each lesser warning once, however many devices share it.
func distinctNotes(as []fleet.Assessed) []string {
	seen := map[string]bool{}
	var notes []string
	for _, a := range as {
		for _, n := range a.Assessment.Notes {
			if !seen[n] {
				seen[n] = true
				notes = append(notes, n)
			}
		}
	}
	return notes
}
