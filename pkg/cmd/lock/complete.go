package lock

import (
	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// completeUDIDs completes --udid with the devices the run's kind can list
// without a session (the sandbox's). Other servers' devices are not
// completed: listing them would mean a request on every Tab.
func completeUDIDs(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		s, err := f.Settings(cmd.Flags())
		d, _ := server.Lookup(s.Kind)
		if err != nil || d.DeviceIDs == nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, id := range d.DeviceIDs() {
			out = append(out, cobra.CompletionWithDesc(id[0], id[1]))
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
