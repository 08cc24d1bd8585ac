// Package version implements `mdmctl version`.
package version

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mdmctl/mdmctl/pkg/buildinfo"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
)

// NewCmdVersion prints version, commit and the commit's date.
func NewCmdVersion(f *cmdutil.Factory) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print mdmctl's version, commit and the commit's date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Get()
			switch format {
			case "json":
				enc := json.NewEncoder(f.IOStreams.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			case "text", "":
				_, err := fmt.Fprintln(f.IOStreams.Out, Line(info))
				return err
			}
			return exitcode.Usagef("invalid --output %q (want text or json)", format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "text", "output format: text, json")
	return cmd
}

// Line is the one-line form, also used by --version.
func Line(info buildinfo.Info) string {
	return fmt.Sprintf("mdmctl %s (commit %s of %s)", info.Version, info.Commit, info.Date)
}
