// Package root assembles mdmctl's command tree and its global flags.
package root

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/buildinfo"
	configcmd "github.com/mdmctl/mdmctl/pkg/cmd/config"
	devicescmd "github.com/mdmctl/mdmctl/pkg/cmd/devices"
	historycmd "github.com/mdmctl/mdmctl/pkg/cmd/history"
	lockcmd "github.com/mdmctl/mdmctl/pkg/cmd/lock"
	pincmd "github.com/mdmctl/mdmctl/pkg/cmd/pin"
	responsecmd "github.com/mdmctl/mdmctl/pkg/cmd/response"
	sandboxcmd "github.com/mdmctl/mdmctl/pkg/cmd/sandbox"
	statuscmd "github.com/mdmctl/mdmctl/pkg/cmd/status"
	versioncmd "github.com/mdmctl/mdmctl/pkg/cmd/version"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// NewCmdRoot returns the mdmctl command with every subcommand.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mdmctl",
		Short: "Lock Apple devices through your MDM server",
		Long: `mdmctl sends Apple's DeviceLock MDM command through NanoMDM, NanoHUB,
MicroMDM, Fleet or any server that takes a raw command plist, and reports
what became of it on every device.

It refuses to lock an Apple silicon Mac running macOS before 11.5, which
DeviceLock would deactivate, whenever it knows the device, and warns when it
does not.

Start here: the built-in sandbox (a real NanoMDM with simulated devices, no
set-up) shows the whole flow:

  mdmctl sandbox devices
  mdmctl lock --context sandbox --udid 00008020-000915083C80012E --message "Lock Message" --wait`,
		Example: `  mdmctl config set-context prod --server https://mdm.example.com --api-key-file ~/.config/mdmctl/prod.key
  mdmctl lock --udid 00008020-000915083C80012E --message "Return to IT" --phone 408-555-5555
  mdmctl lock --csv fleet.csv --yes -o json > result.json`,
		Version:       buildinfo.Get().Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if noColor, _ := cmd.Flags().GetBool("no-color"); noColor {
				f.IOStreams.DisableColor()
			}
		},
	}
	cmd.SetVersionTemplate(versioncmd.Line(buildinfo.Get()) + "\n")
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	cmd.SetFlagErrorFunc(flagError)

	pf := cmd.PersistentFlags()
	pf.String("config", "", "config file (default $XDG_CONFIG_HOME/mdmctl/config.yaml)")
	pf.String("context", "", "context from the config file to use")
	pf.String("server", "", "MDM server URL, no user or password in it (NanoHUB: include the /api/v1/nanomdm prefix)")
	pf.String("kind", "", "server kind: "+strings.Join(server.Kinds(), ", "))
	pf.String("api-user", "", "API user or OAuth client ID (its default, if any, is the kind's)")
	pf.String("tenant", "", "directory (tenant) ID the OAuth client belongs to, for kinds that need one")
	pf.String("api-key-file", "", "file holding the API key")
	pf.String("ca-file", "", "PEM file of CA certificates that sign the server's certificate")
	pf.String("client-cert-file", "", "PEM client certificate for an mTLS proxy")
	pf.String("client-key-file", "", "PEM key of the client certificate")
	pf.Bool("insecure-skip-verify", false, "do not verify the server's TLS certificate (warned on every run)")
	pf.Bool("allow-insecure-http", false, "allow credentials over plain http to a non-loopback host")
	pf.Duration("timeout", 30*time.Second, "time limit of each server request, its retries and waits included")
	pf.Duration("connect-timeout", 10*time.Second, "time limit for connecting to the server (TCP and TLS)")
	pf.Int("retries", 3, "retries of a request that got no answer (connection failure, 429, 502, 503, 504)")
	pf.Bool("debug", false, "trace HTTP exchanges on stderr (credentials and PINs redacted)")
	pf.Bool("no-color", false, "disable color")
	pf.String("history", "", "lock history file (default $XDG_STATE_HOME/mdmctl/history.db)")
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(server.Kinds(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("context", configcmd.CompleteContexts(f))

	cmd.AddCommand(
		lockcmd.NewCmdLock(f, nil),
		historycmd.NewCmdHistory(f, nil),
		statuscmd.NewCmdStatus(f, nil),
		pincmd.NewCmdPin(f, nil),
		devicescmd.NewCmdDevices(f),
		configcmd.NewCmdConfig(f),
		responsecmd.NewCmdResponse(f),
		sandboxcmd.NewCmdSandbox(f),
		versioncmd.NewCmdVersion(f),
	)
	addHelpTopics(cmd)
	return cmd
}
