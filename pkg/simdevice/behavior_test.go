package simdevice

import (
	"reflect"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

func TestKindAnswers(t *testing.T) {
	lock := apple.ParsedCommand{CommandUUID: "C1", RequestType: apple.RequestTypeDeviceLock}
	withPIN := lock
	withPIN.PIN = "123456"
	info := apple.ParsedCommand{CommandUUID: "C2", RequestType: "DeviceInformation"}

	pinError := []apple.ErrorChainItem{{ErrorCode: ErrorCodePINRequired, ErrorDomain: "MCMDMErrorDomain",
		LocalizedDescription: PINRequiredDescription, USEnglishDescription: PINRequiredDescription}}
	ack := func(result string) apple.Response {
		return apple.Response{Status: apple.StatusAcknowledged, CommandUUID: "C1", MessageResult: result}
	}
	tests := []struct {
		kind Kind
		cmd  apple.ParsedCommand
		seen int
		want apple.Response
	}{
		{Acknowledge, lock, 0, ack(apple.MessageResultSuccess)},
		{Acknowledge, lock, 3, ack(apple.MessageResultSuccess)},
		{NoPasscode, lock, 0, ack(apple.MessageResultNoPasscodeSet)},
		{LostMode, lock, 0, ack(apple.MessageResultDeviceInLostMode)},
		{RequirePIN, lock, 0, apple.Response{Status: apple.StatusError, CommandUUID: "C1", ErrorChain: pinError}},
		{RequirePIN, lock, 1, apple.Response{Status: apple.StatusError, CommandUUID: "C1", ErrorChain: pinError}},
		{RequirePIN, withPIN, 0, ack(apple.MessageResultSuccess)},
		{NotNowOnce, lock, 0, apple.Response{Status: apple.StatusNotNow, CommandUUID: "C1"}},
		{NotNowOnce, lock, 1, ack(apple.MessageResultSuccess)},
		{NotNowOnce, lock, 2, ack(apple.MessageResultSuccess)},
		{Offline, lock, 0, ack(apple.MessageResultSuccess)},
		{Kind("no-such-kind"), lock, 0, ack(apple.MessageResultSuccess)},
		{FormatError, lock, 0, FormatErrorResponse("C1", "“DeviceLock” is not a valid request type.")},
	}
	for _, k := range Kinds() {
		tests = append(tests, struct {
			kind Kind
			cmd  apple.ParsedCommand
			seen int
			want apple.Response
		}{k, info, 0, FormatErrorResponse("C2", "“DeviceInformation” is not a valid request type.")})
	}
	for _, tt := range tests {
		got := tt.kind.Answer(tt.cmd, tt.seen)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s answers %s (seen %d, PIN %q) with\n %+v\nwant\n %+v", tt.kind, tt.cmd.RequestType, tt.seen, tt.cmd.PIN, got, tt.want)
		}
		if got.Status == apple.StatusCommandFormatError && (len(got.ErrorChain) != 1 || got.ErrorChain[0].ErrorDomain != "MCMDMErrorDomain") {
			t.Errorf("%s: CommandFormatError without an MCMDMErrorDomain ErrorChain: %+v", tt.kind, got)
		}
	}
}

func TestKindsParseAndDescribe(t *testing.T) {
	for _, k := range Kinds() {
		got, err := ParseKind(string(k))
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
		if k.Describe() == Kind("x").Describe() {
			t.Errorf("%s has no description of its own", k)
		}
		if k.Offline() != (k == Offline) {
			t.Errorf("%s.Offline() = %t", k, k.Offline())
		}
		if Behave(k) != Behavior(k) {
			t.Errorf("Behave(%s) is not the kind itself", k)
		}
	}
	if _, err := ParseKind("acknowledged"); err == nil {
		t.Error("ParseKind accepted an unknown name")
	}
	var _ Behavior = BehaviorFunc(nil)
	if (BehaviorFunc(nil)).Offline() {
		t.Error("a BehaviorFunc is offline")
	}
}
