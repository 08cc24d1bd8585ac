// Package sandbox implements `mdmctl sandbox`: a whole MDM with a set of
// simulated devices, to learn mdmctl or test scripts without a real fleet.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
)

// NewCmdSandbox returns `mdmctl sandbox`.
func NewCmdSandbox(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a sandbox MDM with simulated devices",
		Long: `The sandbox is a real NanoMDM (in-memory) with a set of simulated Apple
devices that enroll, are woken by push, fetch commands and answer as Apple
devices do. The built-in context "sandbox" starts it inside mdmctl itself:

  mdmctl lock --context sandbox --udid 00008020-000915083C80012E --message "Lock Message" --phone 408-555-5555 --wait

"mdmctl sandbox serve" runs it on a port, for scripts and other tools.`,
	}
	cmd.AddCommand(newCmdServe(f), newCmdDevices(f))
	return cmd
}

func newCmdDevices(f *cmdutil.Factory) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "List the sandbox's devices and how each answers",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			switch format {
			case "json":
				return printMembersJSON(f, sandbox.Members)
			case "text", "":
				return printMembers(f, sandbox.Members)
			}
			return exitcode.Usagef("invalid --output %q (want text or json)", format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "text", "output format: text, json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// memberDevice is one sandbox device in `sandbox devices -o json`.
type memberDevice struct {
	UDID       string `json:"udid"`
	Platform   string `json:"platform"`
	Model      string `json:"model"`
	OSVersion  string `json:"os_version"`
	Name       string `json:"name"`
	DeviceLock string `json:"devicelock"`
}

func printMembersJSON(f *cmdutil.Factory, members []sandbox.Member) error {
	out := make([]memberDevice, len(members))
	for i, m := range members {
		out[i] = memberDevice{UDID: m.Facts.UDID, Platform: string(m.Facts.EffectivePlatform()), Model: m.Facts.Model,
			OSVersion: m.Facts.OSVersion, Name: m.Facts.Name, DeviceLock: m.Shows}
	}
	enc := json.NewEncoder(f.IOStreams.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func printMembers(f *cmdutil.Factory, members []sandbox.Member) error {
	tw := tabwriter.NewWriter(f.IOStreams.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UDID\tPLATFORM\tMODEL\tOS\tNAME\tDEVICELOCK")
	for _, m := range members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Facts.UDID, m.Facts.Platform, m.Facts.Model, m.Facts.OSVersion, m.Facts.Name, m.Shows)
	}
	return tw.Flush()
}

func newCmdServe(f *cmdutil.Factory) *cobra.Command {
	var listen, webhookURL string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the sandbox MDM on a local port until interrupted",
		Example: `  mdmctl sandbox serve --listen 127.0.0.1:9000 --webhook-url http://127.0.0.1:9001/webhook
  MDMCTL_SERVER=http://127.0.0.1:9000 MDMCTL_API_KEY=sandbox mdmctl lock --udid 00008020-000915083C80012E --wait --webhook-listen 127.0.0.1:9001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if webhookURL != "" {
				if u, err := url.Parse(webhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return exitcode.Usagef("invalid --webhook-url %q: want an http(s) URL", webhookURL)
				}
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return exitcode.Usagef("invalid --listen %s: %v", listen, err)
			}
			sb, err := sandbox.Start(sandbox.Options{WebhookURL: webhookURL})
			if err != nil {
				l.Close()
				return err
			}
			defer sb.Close()
			srv := &http.Server{Handler: logRequests(f.IOStreams.ErrOut, sb.Handler()), ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(l) }()

			base := "http://" + l.Addr().String()
			out := f.IOStreams.Out
			fmt.Fprintf(out, "Sandbox MDM (NanoMDM v0.9.0 API) on %s\n\n", base)
			fmt.Fprintf(out, "Use it from another shell:\n  export MDMCTL_SERVER=%s MDMCTL_API_KEY=%s\n", base, sandbox.APIKey)
			fmt.Fprintf(out, "  mdmctl config set-context sandbox-local --server %s --api-key-file <file holding %q>\n", base, sandbox.APIKey)
			if webhookURL != "" {
				fmt.Fprintf(out, "  Device answers are posted to %s (mdmctl lock --wait --webhook-listen <its host:port>)\n", webhookURL)
			}
			fmt.Fprintf(out, "  Raw exchange (--kind raw): PUT %s/raw/{udid}\n\nDevices:\n", base)
			if err := printMembers(f, sb.Members()); err != nil {
				return err
			}
			fmt.Fprintln(out, "\nServing; one line per request on stderr. Ctrl-C to stop.")
			select {
			case <-cmd.Context().Done():
			case err := <-errc:
				return err
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9000", "address to serve on")
	cmd.Flags().StringVar(&webhookURL, "webhook-url", "", "also post device answers to this webhook URL, like NanoMDM's -webhook-url")
	return cmd
}
