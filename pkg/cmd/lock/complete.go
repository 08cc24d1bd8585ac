package lock

import (
	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/sandbox"
)

// completeUDIDs completes --udid with the sandbox's devices when the run
// would use the sandbox. Other servers' devices are not completed: mdmctl
// keeps no record of past runs to draw them from.
func completeUDIDs(f *cmdutil.Factory) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		s, err := f.Settings(cmd.Flags())
		if err != nil || s.Kind != config.KindSandbox {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		out := make([]cobra.Completion, len(sandbox.Fleet))
		for i, m := range sandbox.Fleet {
			out[i] = cobra.CompletionWithDesc(m.Facts.UDID, m.Facts.Name+": "+m.Shows)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
