package lock

import (
	"errors"

	"filippo.io/age"

	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/escrow"
)

// openEscrow opens the escrow file for the PINs a run generates, encrypted
// to the settings' recipient (--pin-escrow-recipient, its environment
// variable or the context) when there is one. Every error is bad input:
// it comes before anything is sent.
func openEscrow(path string, settings config.Settings) (*escrow.File, error) {
	recipients, err := escrowRecipients(settings)
	if err != nil {
		return nil, err
	}
	esc, err := escrow.Open(path, recipients...)
	if err != nil {
		return nil, &cmdutil.UsageError{Err: err}
	}
	return esc, nil
}

// escrowRecipients parses the settings' recipient; none is no encryption.
func escrowRecipients(settings config.Settings) ([]age.Recipient, error) {
	if settings.PINEscrowRecipient == "" {
		return nil, nil
	}
	recipients, err := escrow.ParseRecipients(settings.PINEscrowRecipient)
	if err != nil {
		return nil, &cmdutil.UsageError{Err: err}
	}
	return recipients, nil
}

// checkEscrowRecipient rejects a bad recipient before a run that would
// escrow PINs asks or journals anything.
func (opts *Options) checkEscrowRecipient(settings config.Settings) error {
	if !opts.PINGenerate || opts.DryRun {
		return nil
	}
	_, err := escrowRecipients(settings)
	return err
}

// readEscrowedPINs reads the PINs a resume resends, decrypting those of an
// encrypted escrow with --identity.
func (opts *Options) readEscrowedPINs() (map[[2]string]string, error) {
	var identities []age.Identity
	if opts.Identity != "" {
		var err error
		if identities, err = escrow.ReadIdentities(opts.Identity); err != nil {
			return nil, &cmdutil.UsageError{Err: err}
		}
	}
	pins, err := escrow.PINs(opts.PINEscrow, identities...)
	switch {
	case errors.Is(err, escrow.ErrNoIdentity):
		return nil, cmdutil.Usagef("the PINs in %s are encrypted: give --identity FILE, the age identity they were encrypted to, to resume the run", opts.PINEscrow)
	case errors.Is(err, escrow.ErrWrongIdentity):
		return nil, cmdutil.Usagef("--identity %s does not open the PINs in %s: they were encrypted to another age key", opts.Identity, opts.PINEscrow)
	case err != nil:
		return nil, &cmdutil.UsageError{Err: err}
	}
	return pins, nil
}
