// Package lock implements `mdmctl lock`: DeviceLock for one device or a fleet.
package lock

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
	"github.com/mdmctl/mdmctl/pkg/output"
)

// EnvPIN is the environment variable a PIN can come from.
const EnvPIN = "MDMCTL_PIN"

// Options are the parsed flags and the dependencies of one lock run.
type Options struct {
	IO       *iostreams.IOStreams
	Getenv   func(string) string
	Settings func() (config.Settings, error)
	Connect  func(ctx context.Context, s config.Settings, opts connect.Options) (*connect.Connection, error)
	NewUUID  func() string
	Now      func() time.Time

	IDs           []string // --udid values and arguments; "-" reads stdin
	Serials       []string // --serial values
	UDIDFiles     []string
	CSVFiles      []string
	SkipInvalid   bool
	Yes           bool
	Message       string
	Phone         string
	PIN           string
	PINFile       string
	NetworkTether bool
	CommandUUID   string
	PINGenerate   bool
	PINEscrow     string
	// Identity is an age identity file opening an encrypted escrow (--resume).
	Identity string

	Platform          string
	Model             string
	OSVersion         string
	AllowDeactivation bool
	// PreflightGiven is set when --preflight is on the command line (the
	// duration itself comes with the settings: flag, environment, context).
	PreflightGiven bool
	IfUnknown      string

	NoPush         bool
	Wait           time.Duration
	DryRun         bool
	ShowPINs       bool
	Output         string
	Concurrency    int
	Timeout        time.Duration
	ConnectTimeout time.Duration
	Retries        int
	Debug          bool

	// Journal is the run journal's path (default: a new file under
	// $XDG_STATE_HOME/mdmctl/runs); Resume, a journal to resume.
	Journal string
	Resume  string

	// OpenHistory opens the lock history; OSUser names who runs mdmctl.
	// Relock sends to a Mac whose earlier lock still holds, with another PIN.
	OpenHistory func(config.Settings) (*history.Store, error)
	OSUser      func() string
	Relock      bool
}

// NewCmdLock returns the lock command; runF replaces the run function in
// tests of flag parsing.
func NewCmdLock(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Getenv: f.Getenv, Connect: f.Connect, NewUUID: apple.NewCommandUUID, Now: f.Now,
		OpenHistory: f.OpenHistory, OSUser: f.OSUser}
	var udids []string
	cmd := &cobra.Command{
		Use:   "lock [UDID...]",
		Short: "Lock devices with Apple's DeviceLock command",
		Long: `Lock devices with Apple's DeviceLock MDM command.

mdmctl builds the DeviceLock command plist, checks it against the Apple
silicon rule (DeviceLock deactivates an Apple silicon Mac running macOS before
11.5), queues it on the configured MDM server and prints, per device, what the
server did with it.

Targets come from arguments, --udid (repeatable, comma-separated), - (IDs on
stdin, one per line), --udid-file, --csv and --serial (looked up on servers
that know their devices: the sandbox, Fleet). Duplicates collapse. Locking more
than one device asks for confirmation on a terminal and needs --yes elsewhere.

The PIN (macOS only, six digits) can come from --pin, --pin-file or
MDMCTL_PIN, so it never needs to be on the command line; --pin-generate gives
each Mac its own, written to --pin-escrow before the command is sent;
--pin-escrow-recipient (an age public key or recipients file) encrypts each
PIN there. mdmctl pin reads one back for the help desk.

Every run that sends keeps a journal (--journal FILE, or a new file in
$XDG_STATE_HOME/mdmctl/runs, mode 0600): each command and its CommandUUID
before its request goes out, then each device's outcome. No PIN is written
to it. A run that was interrupted, or whose requests did not reach the
server, ends with "to resume: mdmctl lock --resume FILE". --resume sends
again exactly the devices left (never sent, never reached, or unknown),
under their original CommandUUIDs and byte-identical commands, so a command
that had landed is recognized and never queued twice; generated PINs come
back from the escrow file (an encrypted one needs --identity FILE), a PIN
given by flag, file or MDMCTL_PIN must be given again and is checked. Every
device of the run is reported once: those not sent again with their
journaled outcome, marked (earlier run).

With --wait (NanoMDM, MicroMDM) answers come to mdmctl's webhook receiver
on --webhook-listen. On an address other machines can reach (0.0.0.0, [::],
":9099", a LAN address) it needs the key NanoMDM signs events with
(--webhook-hmac-key-file, MDMCTL_WEBHOOK_HMAC_KEY), or --webhook-allow-unsigned
(warned on every run): otherwise anyone could post a forged answer, and the
run is refused (exit 2). Events for a device or CommandUUID the run did not
send never count. Text a device or server sends (descriptions, error bodies)
is printed with control characters, newlines and bidi controls escaped.

Every lock sent is also recorded in the lock history (mdmctl history,
mdmctl status). A Mac whose earlier lock with a PIN still holds (queued,
unanswered or acknowledged) is not sent another PIN: it is refused (exit 6
when nothing else is sent), naming the earlier command; --pin-generate
gives it the earlier PIN again from that lock's escrow; --relock sends
anyway. Devices known not to be Macs are never held back.`,
		Example: `  mdmctl lock --udid 00008020-000915083C80012E --message "Return to IT" --phone 408-555-5555
  MDMCTL_PIN=$(cat pin) mdmctl lock --udid MAC-UDID --model MacBookAir10,1 --os-version 14.5
  mdmctl lock --dry-run --udid X --message "Lock Message" --command-uuid 0001_DeviceLock
  seq -f 'DEV%05g' 10000 | mdmctl lock - --yes --no-push -o jsonl
  mdmctl lock --csv fleet.csv --pin-generate --pin-escrow pins.jsonl --yes
  mdmctl lock --resume ~/.local/state/mdmctl/runs/20261203T144600.123Z-4242.jsonl --yes`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckAttachedDurations(cmd, args, "wait", "preflight"); err != nil {
				return err
			}
			opts.IDs = append(splitIDs(udids), args...)
			opts.Settings = func() (config.Settings, error) { return f.Settings(cmd.Flags()) }
			opts.Timeout, _ = cmd.Flags().GetDuration("timeout")
			opts.ConnectTimeout, _ = cmd.Flags().GetDuration("connect-timeout")
			opts.Debug, _ = cmd.Flags().GetBool("debug")
			opts.Retries, _ = cmd.Flags().GetInt("retries")
			opts.PreflightGiven = cmd.Flags().Changed("preflight")
			if opts.IfUnknown != ifUnknownWarn && opts.IfUnknown != ifUnknownRefuse {
				return exitcode.Usagef("invalid --if-unknown %q: want warn or refuse", opts.IfUnknown)
			}
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
	fl.StringSliceVar(&opts.Serials, "serial", nil, "device serial number, looked up on the server (sandbox, Fleet; repeatable, comma-separated)")
	fl.StringArrayVar(&opts.UDIDFiles, "udid-file", nil, "file with one ID per line (# comments, blank lines skipped)")
	fl.StringArrayVar(&opts.CSVFiles, "csv", nil, "CSV file: header with udid and optional os_version, model, platform, message, phone, pin")
	fl.BoolVar(&opts.SkipInvalid, "skip-invalid", false, "report invalid input lines as skipped and go on")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "lock several devices without asking")
	fl.BoolVar(&opts.PINGenerate, "pin-generate", false, "give each Mac its own random six-digit PIN (needs --pin-escrow)")
	fl.StringVar(&opts.PINEscrow, "pin-escrow", "", "file receiving each generated PIN (appended, synced, mode 0600) before it is sent")
	fl.String("pin-escrow-recipient", "", "age public key (age1...) or recipients file each escrowed PIN is encrypted to")
	fl.StringVar(&opts.Identity, "identity", "", "age identity file opening an encrypted escrow's PINs, for --resume")
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
	fl.Duration("preflight", 0, "first ask devices the guard cannot judge for their facts (DeviceInformation), waiting this long (--preflight alone: 30s; 0: never)")
	fl.Lookup("preflight").NoOptDefVal = "30s"
	fl.StringVar(&opts.IfUnknown, "if-unknown", ifUnknownWarn, "devices whose facts stay unknown: warn (and lock) or refuse")
	fl.BoolVar(&opts.NoPush, "no-push", false, "queue without an APNs push")
	fl.DurationVar(&opts.Wait, "wait", 0, "wait this long for each device's own answer (--wait alone: 2m)")
	fl.Lookup("wait").NoOptDefVal = "2m"
	fl.String("webhook-listen", "", "address of mdmctl's webhook receiver for --wait, e.g. 127.0.0.1:9099 (point NanoMDM's -webhook-url at it)")
	fl.String("webhook-hmac-key-file", "", "file holding the key NanoMDM signs webhooks with (-webhook-hmac-key)")
	fl.Bool("webhook-allow-unsigned", false, "let the receiver take unsigned events on an address other machines can reach (refused otherwise: anyone could forge an answer)")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the command plist and send nothing")
	fl.BoolVar(&opts.ShowPINs, "show-pins", false, "print PINs in the output (they are redacted otherwise)")
	fl.StringVarP(&opts.Output, "output", "o", output.FormatText, "output format: text, json, jsonl, csv")
	fl.IntVar(&opts.Concurrency, "concurrency", 8, "requests in flight at once")
	fl.StringVar(&opts.Journal, "journal", "", "file the run is journaled to, for --resume (default: a new file in $XDG_STATE_HOME/mdmctl/runs)")
	fl.StringVar(&opts.Resume, "resume", "", "resume the run journaled in FILE: resend what did not reach the server, with the same CommandUUIDs")
	fl.BoolVar(&opts.Relock, "relock", false, "lock a Mac whose earlier lock still holds even with another PIN (see mdmctl history)")
	_ = cmd.RegisterFlagCompletionFunc("platform", cobra.FixedCompletions(platformNames(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("if-unknown", cobra.FixedCompletions([]string{ifUnknownWarn, ifUnknownRefuse}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(output.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("udid", completeUDIDs(f))
	return cmd
}

func platformNames() []string {
	names := make([]string, len(apple.Platforms))
	for i, p := range apple.Platforms {
		names[i] = string(p)
	}
	return names
}
