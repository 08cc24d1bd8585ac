package exitcode_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// TestOf pins the documented codes to the errors that produce them,
// also when wrapped.
func TestOf(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("lock: %w", err) }
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain", errors.New("boom"), 1},
		{"declined", &exitcode.CancelError{}, 1},
		{"usage", exitcode.Usagef("bad --pin"), 2},
		{"wrapped usage", wrap(exitcode.Usagef("bad --pin")), 2},
		{"not found", wrap(&exitcode.NotFoundError{Err: errors.New("no PIN escrowed for MAC-1")}), 2},
		{"401", &server.HTTPError{Status: 401}, 4},
		{"403 wrapped", wrap(&server.HTTPError{Status: 403}), 4},
		{"404", &server.HTTPError{Status: 404}, 1},
		{"unreachable", &server.UnavailableError{Err: errors.New("connection refused")}, 5},
		{"deadline", wrap(context.DeadlineExceeded), 5},
		{"protocol", &server.ProtocolError{Problem: "not JSON"}, 1},
		{"interrupted", wrap(context.Canceled), 130},
		{"decided", &exitcode.ExitError{Code: 7}, 7},
	}
	for _, tt := range tests {
		if got := exitcode.Of(tt.err); got != tt.want {
			t.Errorf("%s: Of(%v) = %d, want %d", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestOfRun decides a run from its per-device outcomes.
func TestOfRun(t *testing.T) {
	s := func(counts ...any) report.Summary {
		out := report.Summary{}
		for i := 0; i < len(counts); i += 2 {
			out[counts[i].(report.Outcome)] = counts[i+1].(int)
		}
		return out
	}
	unreachable := &server.UnavailableError{Err: errors.New("refused")}
	tests := []struct {
		name    string
		summary report.Summary
		sendErr error
		want    int
	}{
		{"all queued", s(report.Queued, 3), nil, 0},
		{"dry run", s(report.Planned, 2), nil, 0},
		{"one not pushed", s(report.Queued, 2, report.QueuedNotPushed, 1), nil, 3},
		{"one failed", s(report.Queued, 2, report.Failed, 1), nil, 3},
		{"one refused, rest queued", s(report.Queued, 2, report.Refused, 1), nil, 3},
		{"invalid skipped", s(report.Queued, 2, report.Invalid, 1), nil, 3},
		{"all failed", s(report.Failed, 2), nil, 1},
		{"all refused", s(report.Refused, 2), nil, 6},
		{"refused and invalid", s(report.Refused, 2, report.Invalid, 1), nil, 6},
		{"nothing reached: server down", s(report.Failed, 2), unreachable, 5},
		{"nothing reached: credentials", s(report.Failed, 2), &server.HTTPError{Status: 401}, 4},
		{"server down for some", s(report.Queued, 1, report.Failed, 1), unreachable, 3},
		{"all acknowledged", s(report.Acknowledged, 2), nil, 0},
		{"a device error wins over silence", s(report.Acknowledged, 1, report.DeviceError, 1, report.NoAnswer, 1), nil, 7},
		{"format error", s(report.CommandFormatError, 1), nil, 7},
		{"silent", s(report.Acknowledged, 1, report.NoAnswer, 1), nil, 8},
		{"interrupted", s(report.Queued, 1, report.NotSent, 2), nil, 130},
		{"all unknown", s(report.Unknown, 2), &server.MaybeQueuedError{Err: unreachable}, 5},
		{"some unknown, rest queued", s(report.Queued, 2, report.Unknown, 1), nil, 5},
		{"unknown wins over failed and device errors", s(report.Failed, 1, report.Unknown, 1, report.DeviceError, 1), nil, 5},
	}
	for _, tt := range tests {
		if got := exitcode.OfRun(tt.summary, false, tt.sendErr); got != tt.want {
			t.Errorf("%s: OfRun(%v, %v) = %d, want %d", tt.name, tt.summary, tt.sendErr, got, tt.want)
		}
	}
	// An interrupted run exits 130 whatever its devices did.
	if got := exitcode.OfRun(s(report.Acknowledged, 3), true, nil); got != 130 {
		t.Errorf("interrupted run: %d, want 130", got)
	}
}
