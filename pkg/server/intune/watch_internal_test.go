package intune

import (
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

func TestAnswerMapsEveryActionState(t *testing.T) {
	for _, tt := range []struct {
		state  string
		final  bool
		status string
		code   int
	}{
		{"none", false, "", 0},
		{"pending", false, "", 0},
		{"active", false, "", 0},
		{"done", true, apple.StatusAcknowledged, 0},
		{"failed", true, apple.StatusError, 5},
		{"notSupported", true, apple.StatusError, 6},
		{"canceled", true, apple.StatusError, 2},
	} {
		resp, final := answer("CMD", "UDID", &actionResult{ActionName: "remoteLock", ActionState: tt.state})
		if final != tt.final || (final && (resp.Status != tt.status || resp.CommandUUID != "CMD" || resp.UDID != "UDID")) {
			t.Errorf("%s: %+v final=%t", tt.state, resp, final)
		}
		if tt.status == apple.StatusError && (len(resp.ErrorChain) != 1 || resp.ErrorChain[0].ErrorCode != tt.code) {
			t.Errorf("%s: error chain %+v", tt.state, resp.ErrorChain)
		}
	}
}

func TestLatestLockIgnoresOtherActions(t *testing.T) {
	rs := []actionResult{
		{ActionName: "remoteLock", ActionState: "done", StartDateTime: "2026-01-01T10:00:00Z"},
		{ActionName: "resetPasscode", ActionState: "pending", StartDateTime: "2026-01-02T10:00:00Z"},
		{ActionName: "remoteLock", ActionState: "pending", StartDateTime: "2026-01-01T11:00:00.1234567Z"},
	}
	if l := latestLock(rs); l == nil || l.ActionState != "pending" || l.start().IsZero() {
		t.Fatalf("%+v", l)
	}
	if latestLock(rs[1:2]) != nil {
		t.Fatal("a resetPasscode is no lock")
	}
}
