// Package config implements `mdmctl config`: named contexts in the config file.
package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// NewCmdConfig returns `mdmctl config` and its subcommands.
func NewCmdConfig(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Manage contexts: named MDM servers and their credentials",
		Long: `Manage contexts in the config file ($XDG_CONFIG_HOME/mdmctl/config.yaml,
or --config / MDMCTL_CONFIG). The file is written with mode 0600.

A context names a server URL, its kind and where its API key is. The built-in
context "sandbox" needs no configuration.

A server URL holding a user or password (https://nanomdm:KEY@host) is
refused: the key would land in shell history. Put it in a key file
(--api-key-file) or MDMCTL_API_KEY, the user in --api-user. view and
get-contexts redact such a URL in a hand-written file. Context names that
differ only in case (Prod, prod) are refused when the file is read: mdmctl
would read them as one.`,
	}
	cmd.AddCommand(
		newCmdSetContext(f),
		newCmdUseContext(f),
		newCmdGetContexts(f),
		newCmdCurrentContext(f),
		newCmdView(f),
		newCmdDeleteContext(f),
	)
	return cmd
}

// edit loads the config file, lets fn change it, and saves it.
func edit(f *cmdutil.Factory, flags *pflag.FlagSet, fn func(*config.File) error) error {
	path := f.ConfigPath(flags)
	file, err := config.Load(path)
	if err != nil {
		return &exitcode.UsageError{Err: err}
	}
	if err := fn(file); err != nil {
		return err
	}
	return file.Save(path)
}

func load(f *cmdutil.Factory, flags *pflag.FlagSet) (*config.File, error) {
	file, err := config.Load(f.ConfigPath(flags))
	if err != nil {
		return nil, &exitcode.UsageError{Err: err}
	}
	return file, nil
}

// CompleteContexts completes context names from the config file.
func CompleteContexts(f *cmdutil.Factory) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		file, err := config.Load(f.ConfigPath(cmd.Flags()))
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return append(file.ContextNames(), config.BuiltinContexts()...), cobra.ShellCompDirectiveNoFileComp
	}
}

func completeContextArg(f *cmdutil.Factory) cobra.CompletionFunc {
	complete := CompleteContexts(f)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(cmd, args, toComplete)
	}
}

func newCmdSetContext(f *cmdutil.Factory) *cobra.Command {
	var c config.Context
	var use bool
	cmd := &cobra.Command{
		Use:   "set-context NAME",
		Short: "Create or update a context",
		Example: `  mdmctl config set-context prod --server https://mdm.example.com --api-key-file ~/.config/mdmctl/prod.key
  mdmctl config set-context hub --server https://hub.example.com/api/v1/nanomdm --kind nanomdm`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := config.ValidateContextName(name); err != nil {
				return &exitcode.UsageError{Err: err}
			}
			if config.IsBuiltinContext(name) {
				return exitcode.Usagef("context name %q is built in", name)
			}
			if c.Server != "" {
				if _, err := config.ValidateServerURL(c.Kind, c.Server); err != nil {
					return &exitcode.UsageError{Err: err}
				}
			}
			if c.Kind != "" {
				if err := config.ValidateKind(c.Kind); err != nil {
					return &exitcode.UsageError{Err: err}
				}
			}
			if c.Preflight != "" {
				if _, err := config.ParsePreflight(c.Preflight); err != nil {
					return exitcode.Usagef("invalid --preflight %q: %v", c.Preflight, err)
				}
			}
			if c.APIKeyFile != "" {
				if _, err := config.ReadSecretFile(nil, "API key", c.APIKeyFile); err != nil {
					return &exitcode.UsageError{Err: err}
				}
			}
			var created, activated bool
			err := edit(f, cmd.Flags(), func(file *config.File) error {
				cur, exists := file.Contexts[name]
				created = !exists
				merge(&cur, c, cmd.Flags())
				if file.Contexts == nil {
					file.Contexts = map[string]config.Context{}
				}
				file.Contexts[name] = cur
				if use || file.CurrentContext == "" {
					file.CurrentContext, activated = name, true
				}
				return nil
			})
			if err != nil {
				return err
			}
			verb := "updated"
			if created {
				verb = "created"
			}
			fmt.Fprintf(f.IOStreams.ErrOut, "Context %q %s", name, verb)
			if activated {
				fmt.Fprint(f.IOStreams.ErrOut, " and in use")
			}
			fmt.Fprintln(f.IOStreams.ErrOut, ".")
			return nil
		},
	}
	// These local flags shadow the global ones of the same name on purpose:
	// here they describe the context being written.
	fl := cmd.Flags()
	fl.StringVar(&c.Server, "server", "", "server URL")
	fl.StringVar(&c.Kind, "kind", "", "server kind: "+strings.Join(server.Kinds(), ", "))
	fl.StringVar(&c.APIUser, "api-user", "", "API user or OAuth client ID, when not the kind's default")
	fl.StringVar(&c.Tenant, "tenant", "", "directory (tenant) ID the OAuth client belongs to")
	fl.StringVar(&c.APIKeyFile, "api-key-file", "", "file holding the API key")
	fl.StringVar(&c.CAFile, "ca-file", "", "PEM file of CAs for the server's certificate")
	fl.StringVar(&c.ClientCertFile, "client-cert-file", "", "PEM client certificate for an mTLS proxy")
	fl.StringVar(&c.ClientKeyFile, "client-key-file", "", "PEM key of the client certificate")
	fl.StringVar(&c.WebhookListen, "webhook-listen", "", "address mdmctl's webhook receiver listens on for --wait")
	fl.StringVar(&c.WebhookHMACKeyFile, "webhook-hmac-key-file", "", "file holding the webhook HMAC key")
	fl.StringVar(&c.PINEscrowRecipient, "pin-escrow-recipient", "", "age public key or recipients file generated PINs are encrypted to")
	fl.StringVar(&c.Preflight, "preflight", "", "how long lock asks devices for their facts first, e.g. 30s (0: never)")
	fl.BoolVar(&use, "use", false, "also make it the current context")
	cmd.ValidArgsFunction = completeContextArg(f)
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions(server.Kinds(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// merge copies the flags that were given onto cur, leaving the rest.
func merge(cur *config.Context, in config.Context, flags *pflag.FlagSet) {
	set := func(name string, dst *string, v string) {
		if flags.Changed(name) {
			*dst = v
		}
	}
	set("server", &cur.Server, in.Server)
	set("kind", &cur.Kind, in.Kind)
	set("api-user", &cur.APIUser, in.APIUser)
	set("tenant", &cur.Tenant, in.Tenant)
	set("api-key-file", &cur.APIKeyFile, in.APIKeyFile)
	set("ca-file", &cur.CAFile, in.CAFile)
	set("client-cert-file", &cur.ClientCertFile, in.ClientCertFile)
	set("client-key-file", &cur.ClientKeyFile, in.ClientKeyFile)
	set("webhook-listen", &cur.WebhookListen, in.WebhookListen)
	set("webhook-hmac-key-file", &cur.WebhookHMACKeyFile, in.WebhookHMACKeyFile)
	set("pin-escrow-recipient", &cur.PINEscrowRecipient, in.PINEscrowRecipient)
	set("preflight", &cur.Preflight, in.Preflight)
}

func newCmdUseContext(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make a context the current one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			err := edit(f, cmd.Flags(), func(file *config.File) error {
				if _, ok := file.Contexts[name]; !ok && !config.IsBuiltinContext(name) {
					return exitcode.Usagef("unknown context %q (see mdmctl config get-contexts)", name)
				}
				file.CurrentContext = name
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.ErrOut, "Switched to context %q.\n", name)
			return nil
		},
	}
	cmd.ValidArgsFunction = completeContextArg(f)
	return cmd
}

func newCmdDeleteContext(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete-context NAME",
		Short: "Delete a context",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			wasCurrent := false
			err := edit(f, cmd.Flags(), func(file *config.File) error {
				if _, ok := file.Contexts[name]; !ok {
					return exitcode.Usagef("unknown context %q (see mdmctl config get-contexts)", name)
				}
				delete(file.Contexts, name)
				wasCurrent = file.CurrentContext == name
				if wasCurrent {
					file.CurrentContext = ""
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(f.IOStreams.ErrOut, "Deleted context %q.\n", name)
			if wasCurrent {
				fmt.Fprintf(f.IOStreams.ErrOut, "It was the current context; now none is current (mdmctl config use-context NAME picks one).\n")
			}
			return nil
		},
	}
	cmd.ValidArgsFunction = completeContextArg(f)
	return cmd
}

func newCmdCurrentContext(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "current-context",
		Short: "Print the context in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := load(f, cmd.Flags())
			if err != nil {
				return err
			}
			name, _ := cmd.Flags().GetString("context")
			if name == "" {
				name = f.Getenv(config.EnvContext)
			}
			if name == "" {
				name = file.CurrentContext
			}
			if name == "" {
				return exitcode.Usagef("no current context (mdmctl config use-context NAME)")
			}
			_, err = fmt.Fprintln(f.IOStreams.Out, name)
			return err
		},
	}
}

type contextRow struct {
	Current bool   `json:"current"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Server  string `json:"server,omitempty"`
}

func newCmdGetContexts(f *cmdutil.Factory) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := load(f, cmd.Flags())
			if err != nil {
				return err
			}
			rows := []contextRow{}
			file = file.Redacted()
			for _, name := range file.ContextNames() {
				c := file.Contexts[name]
				kind := c.Kind
				if kind == "" {
					kind = server.DefaultKind()
				}
				rows = append(rows, contextRow{Current: name == file.CurrentContext, Name: name, Kind: kind, Server: c.Server})
			}
			for _, name := range config.BuiltinContexts() {
				if _, ok := file.Contexts[name]; !ok {
					rows = append(rows, contextRow{Current: file.CurrentContext == name, Name: name, Kind: name})
				}
			}
			switch format {
			case "json":
				return writeJSON(f, rows)
			case "text", "":
				tw := tabwriter.NewWriter(f.IOStreams.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CURRENT\tNAME\tKIND\tSERVER")
				for _, r := range rows {
					mark := ""
					if r.Current {
						mark = "*"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", mark, r.Name, r.Kind, r.Server)
				}
				return tw.Flush()
			}
			return exitcode.Usagef("invalid --output %q (want text or json)", format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "text", "output format: text, json")
	return cmd
}

func newCmdView(f *cmdutil.Factory) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "view",
		Short: "Print the config file, secrets redacted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file, err := load(f, cmd.Flags())
			if err != nil {
				return err
			}
			red := file.Redacted()
			if len(file.Contexts) == 0 && (format == "yaml" || format == "") {
				// Data on stdout stays what it says (an empty config); the way on goes to stderr.
				fmt.Fprintln(f.IOStreams.ErrOut, "No contexts yet: make one with mdmctl config set-context NAME --server URL --api-key-file ~/.config/mdmctl/NAME.key (or try --context sandbox).")
			}
			switch format {
			case "json":
				return writeJSON(f, red)
			case "yaml", "":
				data, err := yaml.Marshal(red)
				if err != nil {
					return err
				}
				_, err = f.IOStreams.Out.Write(data)
				return err
			}
			return exitcode.Usagef("invalid --output %q (want yaml or json)", format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "yaml", "output format: yaml, json")
	return cmd
}

func writeJSON(f *cmdutil.Factory, v any) error {
	enc := json.NewEncoder(f.IOStreams.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
