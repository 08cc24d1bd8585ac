package lock

import (
	"errors"

	"filippo.io/age"

	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
)

// escrowRecipients parses the settings' recipient (--pin-escrow-recipient,
// its environment variable or the context) for a run that escrows PINs;
// none means PINs in clear. A run reads it before it asks or journals
// anything, so a bad one is bad input with nothing sent.
func (opts *Options) escrowRecipients(settings config.Settings, escrows bool) ([]age.Recipient, error) {
	if settings.PINEscrowRecipient == "" || !escrows || opts.DryRun {
		return nil, nil
	}
	recipients, err := escrow.ParseRecipients(settings.PINEscrowRecipient)
	if err != nil {
		return nil, &exitcode.UsageError{Err: err}
	}
	return recipients, nil
}

// openEscrow opens the escrow file for the PINs a run generates, each
// encrypted to recipients when there are any.
func openEscrow(path string, recipients []age.Recipient) (*escrow.File, error) {
	esc, err := escrow.Open(path, recipients...)
	if err != nil {
		return nil, &exitcode.UsageError{Err: err}
	}
	return esc, nil
}

// readEscrowedPINs reads the PINs a resume resends, decrypting those of an
// encrypted escrow with --identity.
func (opts *Options) readEscrowedPINs() (map[[2]string]string, error) {
	var identities []age.Identity
	if opts.Identity != "" {
		var err error
		if identities, err = escrow.ReadIdentities(opts.Identity); err != nil {
			return nil, &exitcode.UsageError{Err: err}
		}
	}
	pins, err := escrow.PINs(opts.PINEscrow, identities...)
	switch {
	case errors.Is(err, escrow.ErrNoIdentity):
		return nil, exitcode.Usagef("the PINs in %s are encrypted: give --identity FILE, the age identity they were encrypted to, to resume the run", opts.PINEscrow)
	case errors.Is(err, escrow.ErrWrongIdentity):
		return nil, exitcode.Usagef("--identity %s does not open the PINs in %s: they were encrypted to another age key", opts.Identity, opts.PINEscrow)
	case err != nil:
		return nil, &exitcode.UsageError{Err: err}
	}
	return pins, nil
}
