package lock

import (
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
)

// checkReceiver refuses, before anything is asked or sent, a webhook
// receiver that would count forged answers, and warns when
// --webhook-allow-unsigned lets one run.
func (r *runner) checkReceiver(conn *cmdutil.Connection, settings config.Settings) error {
	warning, err := cmdutil.NewAnswerFeed(conn, settings).Check()
	if warning != "" {
		r.warn(warning)
	}
	return err
}
