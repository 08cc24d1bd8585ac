package kandji

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// Kandji's MDM status codes in a device's command list.
const (
	StatusPending   = 1
	StatusRunning   = 2
	StatusCompleted = 3
	StatusFailed    = 4
	StatusNotNow    = 5
)

// commandPage is the most commands one list request returns.
const commandPage = 300

// command is one entry of a device's command list.
type command struct {
	UUID          string          `json:"uuid"`
	RequestType   string          `json:"request_type"`
	CommandType   string          `json:"command_type"`
	Status        int             `json:"status"`
	DateRequested string          `json:"date_requested"`
	DateCompleted string          `json:"date_completed"`
	Attempts      int             `json:"attempts"`
	ErrorChain    json.RawMessage `json:"error_chain"`
}

func (c command) isLock() bool {
	return c.RequestType == apple.RequestTypeDeviceLock || c.CommandType == apple.RequestTypeDeviceLock
}

// parseTime reads Kandji's timestamps: RFC 3339, or with a space for the T.
func parseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (c command) requested() (time.Time, bool) { return parseTime(c.DateRequested) }

type commandList struct {
	Commands struct {
		Count   int       `json:"count"`
		Next    *string   `json:"next"`
		Results []command `json:"results"`
	} `json:"commands"`
}

// Commands reads a device's command list: the first page and, when there
// are more, the last (Kandji's order is unconfirmed; the newest are at one
// end), so a lock is found in two requests at most.
func (c *Client) Commands(ctx context.Context, deviceID string) ([]command, error) {
	path := DevicesPath + "/" + url.PathEscape(deviceID) + "/commands"
	var first commandList
	found, err := c.get(ctx, fmt.Sprintf("%s?limit=%d&offset=0", path, commandPage), 4<<20, &first, "device commands")
	switch {
	case err != nil:
		return nil, err
	case !found:
		return nil, fmt.Errorf("device %s is unknown to Kandji", deviceID)
	}
	out := first.Commands.Results
	if n := first.Commands.Count; n > len(out) && len(out) > 0 {
		var last commandList
		if _, err := c.get(ctx, fmt.Sprintf("%s?limit=%d&offset=%d", path, commandPage, max(n-commandPage, len(out))), 4<<20, &last, "device commands"); err != nil {
			return nil, err
		}
		out = append(out, last.Commands.Results...)
	}
	return out, nil
}

// findLock finds, in a device's command list, the lock an attempt from
// since on may have left: the newest DeviceLock requested since then, or
// any one still pending, running or put off (NotNow), whenever requested.
// A failed lock before since is not it. nil: Kandji holds no such lock.
func (c *Client) findLock(ctx context.Context, deviceID string, since time.Time) (*command, error) {
	cmds, err := c.Commands(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	var best *command
	var bestAt time.Time
	for i := range cmds {
		cmd := &cmds[i]
		if !cmd.isLock() {
			continue
		}
		at, ok := cmd.requested()
		open := cmd.Status == StatusPending || cmd.Status == StatusRunning || cmd.Status == StatusNotNow
		if !open && (!ok || at.Before(since)) {
			continue
		}
		if best == nil || at.After(bestAt) {
			best, bestAt = cmd, at
		}
	}
	return best, nil
}

// commandByUUID finds ref in the list.
func commandByUUID(cmds []command, ref string) *command {
	for i := range cmds {
		if strings.EqualFold(cmds[i].UUID, ref) {
			return &cmds[i]
		}
	}
	return nil
}

// Response is the device's answer as Kandji records it, for mdmctl's
// command commandUUID; ok is false while the command has no answer
// (pending or running).
func (c command) Response(commandUUID, udid string) (apple.Response, bool) {
	r := apple.Response{CommandUUID: commandUUID, UDID: udid}
	switch c.Status {
	case StatusCompleted:
		r.Status = apple.StatusAcknowledged
	case StatusFailed:
		r.Status = apple.StatusError
		r.ErrorChain = errorChain(c.ErrorChain)
	case StatusNotNow:
		r.Status = apple.StatusNotNow
	default:
		return r, false
	}
	return r, true
}

// errorChain reads Kandji's error_chain, whose keys are unconfirmed:
// Apple's (ErrorCode, ErrorDomain, LocalizedDescription) or snake case.
func errorChain(raw json.RawMessage) []apple.ErrorChainItem {
	var items []map[string]any
	if json.Unmarshal(raw, &items) != nil {
		return nil
	}
	str := func(m map[string]any, keys ...string) string {
		for _, k := range keys {
			if s, ok := m[k].(string); ok && s != "" {
				return s
			}
		}
		return ""
	}
	var out []apple.ErrorChainItem
	for _, m := range items {
		it := apple.ErrorChainItem{
			ErrorDomain:          str(m, "ErrorDomain", "error_domain"),
			LocalizedDescription: str(m, "LocalizedDescription", "localized_description"),
			USEnglishDescription: str(m, "USEnglishDescription", "us_english_description"),
		}
		for _, k := range []string{"ErrorCode", "error_code"} {
			if n, ok := m[k].(float64); ok {
				it.ErrorCode = int(n)
			}
		}
		if it != (apple.ErrorChainItem{}) {
			out = append(out, it)
		}
	}
	return out
}
