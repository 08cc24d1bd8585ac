package lock

import (
	"github.com/spf13/cobra"

	historycmd "github.com/mdmctl/mdmctl/pkg/cmd/history"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/connect"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// completeUDIDs completes --udid with the devices the run's kind can list
// without a session (the sandbox's), and with the devices the lock history
// holds for the run's server. Other servers' devices are not asked for:
// that would mean a request on every Tab.
func completeUDIDs(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		s, err := f.Settings(cmd.Flags())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		seen := map[string]bool{}
		if d, _ := server.Lookup(s.Kind); d.DeviceIDs != nil {
			for _, id := range d.DeviceIDs() {
				seen[id[0]] = true
				out = append(out, cobra.CompletionWithDesc(id[0], id[1]))
			}
		}
		if host := connect.HistoryServer(s); host != "" {
			for _, id := range historycmd.RecordedDevices(cmd.Context(), f.OpenHistory, s, host) {
				if !seen[id] {
					out = append(out, cobra.CompletionWithDesc(id, "locked before (mdmctl history)"))
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
