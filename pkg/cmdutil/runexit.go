package cmdutil

import "github.com/mdmctl/mdmctl/pkg/report"

// RunExitCode decides a lock run's exit code from its summary. Device
// answers come with --wait or from the raw kind's exchange. sendErr is the
// first error that kept a request from any answer; when nothing reached a
// device it decides the code (4 for credentials, 5 for an unreachable server).
// A device whose fate is unknown (it may be queued) makes the run exit 5.
func RunExitCode(s report.Summary, sendErr error) int {
	if s[report.NotSent] > 0 && sendErr == nil {
		return ExitInterrupted
	}
	if s[report.Unknown] > 0 {
		// Some device may hold the command without anyone knowing: a
		// script must not read this as "failed, safe to run again".
		return ExitUnavailable
	}
	reached := s[report.Queued] + s[report.QueuedNotPushed] + s[report.Acknowledged] +
		s[report.DeviceError] + s[report.CommandFormatError] + s[report.NoAnswer] + s[report.Planned]
	total := s.Total()
	if reached == 0 {
		switch {
		case sendErr != nil:
			return ExitCode(sendErr)
		case total > 0 && s[report.Refused] == total-s[report.Invalid]:
			return ExitRefused
		}
		return ExitFailure
	}
	if s[report.DeviceError]+s[report.CommandFormatError] > 0 {
		return ExitDeviceError
	}
	if s[report.NoAnswer] > 0 {
		return ExitNoAnswer
	}
	if reached < total || s[report.QueuedNotPushed] > 0 {
		return ExitPartial
	}
	return ExitOK
}
