package connect

import (
	"strings"

	"github.com/mdmctl/mdmctl/internal/redact"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// HistoryServer is how the lock history names the server of s: its URL,
// any user or password redacted (config refuses them anyway), or the kind's name for an in-process kind
// (the sandbox); "" when no server is configured.
func HistoryServer(s config.Settings) string {
	if d, ok := server.Lookup(s.Kind); ok && d.InProcess && s.Server == "" {
		return d.Kind
	}
	return redact.URL(strings.TrimRight(s.Server, "/"))
}
