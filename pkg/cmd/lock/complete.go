package lock

import (
	"github.com/spf13/cobra"

	historycmd "github.com/mdmctl/mdmctl/pkg/cmd/history"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
)

// completeUDIDs completes --udid with the sandbox's devices when the run
// would use the sandbox, and with the devices the lock history holds for
// the run's server.
func completeUDIDs(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		s, err := f.Settings(cmd.Flags())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		seen := map[string]bool{}
		if s.Kind == config.KindSandbox {
			for _, m := range sandbox.Fleet {
				seen[m.Facts.UDID] = true
				out = append(out, cobra.CompletionWithDesc(m.Facts.UDID, m.Facts.Name+": "+m.Shows))
			}
		}
		if s.Server != "" || s.Kind == config.KindSandbox {
			for _, id := range historycmd.RecordedDevices(cmd.Context(), f.OpenHistory, s, cmdutil.HistoryServer(s)) {
				if !seen[id] {
					out = append(out, cobra.CompletionWithDesc(id, "locked before (mdmctl history)"))
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
