package lock

import (
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/connect"
)

// checkReceiver refuses, before anything is asked or sent, a webhook
// receiver that would count forged answers, and warns when
// --webhook-allow-unsigned lets one run.
func (r *runner) checkReceiver(conn *connect.Connection, settings config.Settings) error {
	warning, err := connect.NewAnswerFeed(conn, settings).Check()
	if warning != "" {
		r.warn(warning)
	}
	return err
}
