package root

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mdmctl/mdmctl/internal/suggest"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
)

// flagError makes every flag error a usage error (exit 2) and points a
// mistyped flag at the one meant.
func flagError(cmd *cobra.Command, err error) error {
	name, unknown := strings.CutPrefix(err.Error(), "unknown flag: --")
	switch {
	case !unknown:
		return &exitcode.UsageError{Err: err}
	case name == "api-key":
		return exitcode.Usagef("there is no --api-key flag, so the key never lands in shell history: use MDMCTL_API_KEY or --api-key-file")
	}
	var names []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	if near := suggest.Closest(name, names); near != "" {
		return exitcode.Usagef("%v (did you mean --%s?)", err, near)
	}
	return &exitcode.UsageError{Err: err}
}

// UnknownCommand turns cobra's "unknown command" error into a usage error
// (exit 2) whose suggestion, if cobra has one, stands on its own line.
func UnknownCommand(err error) error {
	if err == nil || !strings.HasPrefix(err.Error(), "unknown command ") {
		return err
	}
	first, rest, _ := strings.Cut(err.Error(), "\n")
	var hint string
	if _, names, ok := strings.Cut(rest, "Did you mean this?"); ok {
		if fields := strings.Fields(names); len(fields) > 0 {
			hint = "did you mean: mdmctl " + strings.Join(fields, " or mdmctl ") + "?"
		}
	}
	if hint == "" {
		hint = "see mdmctl --help"
	}
	return &exitcode.UsageError{Err: errors.New(first), Hint: hint}
}
