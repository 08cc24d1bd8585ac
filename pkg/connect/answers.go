package connect

import (
	"context"
	"fmt"

	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// AnswerFeed brings one run's device answers to its collectors: the
// connection's own feed (the sandbox, Fleet's polled results) or mdmctl's
// webhook receiver, started once and shared, so a preflight and --wait can
// both listen on the address NanoMDM's -webhook-url names.
type AnswerFeed struct {
	conn     *Connection
	settings config.Settings
	fanout   *webhook.Fanout
	receiver *webhook.Receiver
	url      string
	shutdown func(context.Context) error
}

// NewAnswerFeed prepares the feed; nothing listens before Subscribe.
func NewAnswerFeed(conn *Connection, settings config.Settings) *AnswerFeed {
	return &AnswerFeed{conn: conn, settings: settings}
}

// Subscribe feeds c every answer from now on. It returns the webhook URL
// when answers come through mdmctl's receiver, "" otherwise. flag names
// what needs the receiver, for the error when no address is configured.
func (f *AnswerFeed) Subscribe(c *webhook.Collector, flag string) (string, error) {
	if f.conn.Answers != nil {
		f.conn.Answers(c)
		return "", nil
	}
	if f.fanout == nil {
		if f.settings.WebhookListen == "" {
			return "", exitcode.Usagef("%s needs --webhook-listen ADDR (or webhook-listen in the context) for NanoMDM's -webhook-url to reach", flag)
		}
		if _, err := f.Check(); err != nil {
			return "", err
		}
		fanout := &webhook.Fanout{}
		rc := &webhook.Receiver{Collector: fanout}
		if f.settings.WebhookHMACKey != "" {
			rc.HMACKey = []byte(f.settings.WebhookHMACKey)
		}
		url, shutdown, err := webhook.Listen(f.settings.WebhookListen, rc)
		if err != nil {
			return "", &exitcode.UsageError{Err: err}
		}
		f.fanout, f.receiver, f.url, f.shutdown = fanout, rc, url, shutdown
	}
	f.fanout.Add(c)
	return f.url, nil
}

// Check refuses a receiver that would count unsigned events from beyond
// this machine: on 0.0.0.0, [::], an empty host or any address not
// loopback, anyone who reaches it could post a forged "Acknowledged" for a
// device (one that does not exist, even) and the run would report it
// locked. With --webhook-allow-unsigned it returns the warning to print on
// every run instead. Nothing is checked when answers come from the
// connection. Subscribe checks too; callers check first to refuse before
// asking or sending anything.
func (f *AnswerFeed) Check() (warning string, err error) {
	s := f.settings
	if f.conn.Answers != nil || s.WebhookListen == "" || s.WebhookHMACKey != "" {
		return "", nil
	}
	local, err := webhook.LoopbackOnly(s.WebhookListen)
	switch {
	case err != nil:
		return "", &exitcode.UsageError{Err: err}
	case local:
		return "", nil
	case s.WebhookAllowUnsigned:
		return fmt.Sprintf("--webhook-allow-unsigned: anyone who can reach %s can post a forged device answer", s.WebhookListen), nil
	}
	return "", exitcode.Usagef("refusing unsigned webhook events on --webhook-listen %s, which other machines can reach (anyone could forge a device's answer): "+
		"give the key NanoMDM signs with (--webhook-hmac-key-file or MDMCTL_WEBHOOK_HMAC_KEY), listen on 127.0.0.1, or pass --webhook-allow-unsigned", s.WebhookListen)
}

// Receiver is mdmctl's webhook receiver, nil when answers come from the
// connection or nothing subscribed: its counts tell a silent device from a
// webhook that never reached mdmctl.
func (f *AnswerFeed) Receiver() *webhook.Receiver { return f.receiver }

// Close stops the receiver, if one was started; safe on a nil feed.
func (f *AnswerFeed) Close(ctx context.Context) {
	if f != nil && f.shutdown != nil {
		_ = f.shutdown(context.WithoutCancel(ctx))
	}
}
