package root

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/server"
)

// helpTopics are documentation-only commands: `mdmctl help exit-codes`.
var helpTopics = []struct{ name, short, long string }{
	{"exit-codes", "Exit codes of mdmctl", `mdmctl exits with a stable code a script can act on:

  0    success: every device queued (and pushed, unless --no-push);
       with --wait, every device answered Acknowledged
  1    nothing was queued, or another error
  2    usage error or invalid input (flag, argument, file, environment,
       config; a lock history that cannot be opened); nothing was sent;
       also mdmctl pin for a device the escrow holds no PIN for
  3    partial: some devices failed, were refused by the guard, or were
       queued without a push
  4    authentication or authorization failed (HTTP 401/403)
  5    server unreachable, timed out, or failed with a 5xx and no answer;
       also when some device is unknown: a request may have reached the
       server and got no answer, so it may hold the command
  6    refused by the Apple silicon safety guard, or held back because an
       earlier lock with another PIN still holds (--relock); nothing was sent
  7    --wait, status: a device answered Error or CommandFormatError
  8    --wait, status: the wait ended with devices that never answered
  130  interrupted (Ctrl-C); devices not yet sent are reported as not-sent

When several apply, the first that fits wins: 130 (interrupted), then, if
nothing reached a device, the reason (4, 5, 6 or 1); then 7, 8, 3, 0.
`},
	{"environment", "Environment variables mdmctl reads", `MDMCTL_SERVER                    server URL (overrides the context)
MDMCTL_KIND                      server kind: {kinds}
MDMCTL_API_KEY                   API key or OAuth client secret (overrides the context's)
MDMCTL_API_KEY_FILE              file holding the API key
MDMCTL_API_USER                  API user or OAuth client ID, when not the kind's default
MDMCTL_TENANT                    directory (tenant) ID of the OAuth client (Intune)
MDMCTL_CONTEXT                   context to use instead of current-context
MDMCTL_CONFIG                    config file (default $XDG_CONFIG_HOME/mdmctl/config.yaml)
MDMCTL_PIN                       six-digit PIN for mdmctl lock
MDMCTL_WEBHOOK_HMAC_KEY          key that verifies webhook signatures (--wait)
MDMCTL_PIN_ESCROW_RECIPIENT      age public key or recipients file escrowed PINs are encrypted to
MDMCTL_HISTORY                   lock history file (default $XDG_STATE_HOME/mdmctl/history.db)
XDG_STATE_HOME                   run journals for --resume go to $XDG_STATE_HOME/mdmctl/runs, the history to $XDG_STATE_HOME/mdmctl (default ~/.local/state)
NO_COLOR, CLICOLOR=0, TERM=dumb  turn color off
CLICOLOR_FORCE=1                 color even when not on a terminal

Precedence: flag > environment > context in the config file > default.
`},
}

func addHelpTopics(root *cobra.Command) {
	for _, t := range helpTopics {
		// The kinds are the registered ones, never a list to keep up.
		long := strings.ReplaceAll(t.long, "{kinds}", strings.Join(server.Kinds(), ", "))
		root.AddCommand(&cobra.Command{
			Use:   t.name,
			Short: t.short,
			Long:  long,
			// A help topic has no Run: cobra shows it under "Additional help topics".
		})
	}
}
