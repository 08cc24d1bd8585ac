package cmdutil

import (
	"strings"

	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/history"
)

// HistoryServer is how the lock history names the server of s: its URL
// without user or password, or "sandbox" for the built-in one.
func HistoryServer(s config.Settings) string {
	if s.Kind == config.KindSandbox && s.Server == "" {
		return config.SandboxContext
	}
	return history.RedactServer(strings.TrimRight(s.Server, "/"))
}
