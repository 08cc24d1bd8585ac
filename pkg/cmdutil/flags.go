package cmdutil

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/exitcode"
)

// CheckAttachedDurations catches `--wait 20s` for flags whose value is
// optional (NoOptDefVal): pflag takes the flag bare and "20s" as an
// argument, a device ID. The value must be attached with =.
func CheckAttachedDurations(cmd *cobra.Command, args []string, names ...string) error {
	for _, name := range names {
		fl := cmd.Flags().Lookup(name)
		if fl == nil || !fl.Changed || fl.NoOptDefVal == "" || fl.Value.String() != mustDuration(fl.NoOptDefVal).String() {
			continue
		}
		for _, a := range args {
			if _, err := time.ParseDuration(a); err == nil {
				return exitcode.Usagef("--%s takes its duration with =, as in --%s=%s (%q would be a device ID)", name, name, a, a)
			}
		}
	}
	return nil
}

func mustDuration(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}
