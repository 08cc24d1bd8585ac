// Package pin implements `mdmctl pin`: the PIN that locked a Mac, from the
// escrow file, for the help-desk call.
package pin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	historycmd "github.com/mdmctl/mdmctl/pkg/cmd/history"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
	"github.com/mdmctl/mdmctl/pkg/history"
	"github.com/mdmctl/mdmctl/pkg/iostreams"
)

// Options are the parsed flags and the dependencies of one pin lookup.
type Options struct {
	IO  *iostreams.IOStreams
	Now func() time.Time
	// User is the OS user reading the PIN, for the record of the read.
	User func() string
	// RecordRead, when set, records that user read device's PIN at at; the
	// PIN is printed only once it is recorded.
	RecordRead func(ctx context.Context, device, user string, at time.Time) error
	// Recorded, when set, finds the latest recorded lock of a device, by
	// the ID it was locked under or its serial number: it names the device
	// a serial stands for, and the escrow its PIN went to.
	Recorded func(ctx context.Context, idOrSerial string) (history.Lock, bool, error)

	Device      string // the device ID it was locked under, or its serial
	Escrow      string
	Identity    string
	CommandUUID string
}

// NewCmdPin returns the pin command; runF replaces the run function in
// tests of flag parsing.
func NewCmdPin(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Now: f.Now, User: f.OSUser}
	cmd := &cobra.Command{
		Use:   "pin ID --pin-escrow FILE",
		Short: "Print the PIN that locked a Mac, from the escrow file",
		Long: `Print the PIN that locked a Mac: the one mdmctl lock --pin-generate wrote
to the escrow file (--pin-escrow) before sending the lock.

The device is named by the ID it was locked under (UDID or enrollment ID),
or by its serial number when the lock was given it (--serial, a CSV serial
column): the lock history tells which device a serial is, and which escrow
file its PIN went to, so --pin-escrow may be left out. Only the PIN and a
newline go to stdout; notes go to stderr.

The escrow is written before each lock is sent, so a Mac may have several
records, the latest of which may be a lock that never reached it. The latest
is printed; when there are others, stderr lists each with its time and
CommandUUID, and --command-uuid prints that one's PIN instead.

An escrow written with --pin-escrow-recipient holds each PIN encrypted with
age: --identity FILE gives the age identity (AGE-SECRET-KEY-1...) that opens
it; a file that group or others can read is refused.

A device the escrow holds no PIN for exits 2.`,
		Example: `  mdmctl pin --pin-escrow pins.jsonl 5EC0DE15-0003-4B05-8E40-000000000015
  mdmctl pin --pin-escrow pins.jsonl --identity ~/.config/mdmctl/escrow.key 5EC0DE15-0003-4B05-8E40-000000000015
  mdmctl pin C02XK1ABJG5J`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return exitcode.Usagef("mdmctl pin takes one device ID, not %d", len(args))
			}
			opts.Device = args[0]
			opts.RecordRead = func(ctx context.Context, device, user string, at time.Time) error {
				_, store, err := historycmd.Open(func() (config.Settings, error) { return f.Settings(cmd.Flags()) }, f.OpenHistory)
				if err != nil {
					return err
				}
				defer store.Close()
				return store.RecordPINRead(ctx, device, user, at)
			}
			opts.Recorded = func(ctx context.Context, key string) (history.Lock, bool, error) {
				_, store, err := historycmd.Open(func() (config.Settings, error) { return f.Settings(cmd.Flags()) }, f.OpenHistory)
				if err != nil {
					return history.Lock{}, false, err
				}
				defer store.Close()
				return store.LatestOf(ctx, key)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Escrow, "pin-escrow", "", "escrow file the lock wrote its generated PINs to")
	fl.StringVar(&opts.Identity, "identity", "", "age identity file opening an encrypted escrow's PINs")
	fl.StringVar(&opts.CommandUUID, "command-uuid", "", "print the PIN of this lock command, not of the latest")
	return cmd
}

// Run finds the device's records, prints the latest one's PIN and notes the
// others.
func Run(ctx context.Context, opts *Options) error {
	if opts.Recorded != nil {
		lock, ok, err := opts.Recorded(ctx, opts.Device)
		switch {
		case err != nil:
			return fmt.Errorf("reading the lock history: %v", err)
		case ok && lock.Device != opts.Device:
			fmt.Fprintf(opts.IO.ErrOut, "serial %s is %s (lock history)\n", opts.Device, lock.Device)
			opts.Device = lock.Device
		}
		if ok && opts.Escrow == "" {
			opts.Escrow = lock.PINEscrow
		}
	}
	if opts.Escrow == "" {
		return exitcode.Usagef("mdmctl pin needs --pin-escrow FILE: the escrow file the lock wrote its PINs to (the lock history names none for %q)", opts.Device)
	}
	recs, err := escrow.Read(opts.Escrow)
	if err != nil {
		return &exitcode.UsageError{Err: err}
	}
	found, err := opts.find(recs)
	if err != nil {
		return err
	}
	latest := found[len(found)-1]
	chosen := latest
	if opts.CommandUUID != "" {
		i := slices.IndexFunc(found, func(r escrow.Record) bool { return r.CommandUUID == opts.CommandUUID })
		if i < 0 {
			return &exitcode.NotFoundError{Err: fmt.Errorf("no PIN escrowed for %s under command %q in %s", latest.ID, opts.CommandUUID, opts.Escrow)}
		}
		chosen = found[i]
	}
	pin, err := opts.unseal(chosen)
	if err != nil {
		return err
	}
	if opts.RecordRead != nil {
		if err := opts.RecordRead(ctx, chosen.ID, opts.User(), opts.Now().UTC()); err != nil {
			return fmt.Errorf("recording that the PIN of %s was read: %v (the PIN is shown only once the read is recorded)", chosen.ID, err)
		}
	}
	if len(found) > 1 {
		opts.noteOthers(found, chosen)
	}
	_, err = fmt.Fprintln(opts.IO.Out, pin)
	return err
}

// find returns the device's records, oldest first, one per command.
func (opts *Options) find(recs []escrow.Record) ([]escrow.Record, error) {
	found := slices.DeleteFunc(slices.Clone(recs), func(r escrow.Record) bool { return r.ID != opts.Device })
	if len(found) == 0 {
		return nil, &exitcode.NotFoundError{Err: fmt.Errorf("no PIN escrowed for %q in %s: give the UDID or enrollment ID it was locked under, or the serial number the lock was given", opts.Device, opts.Escrow)}
	}
	// Records are appended as locks are sent; a stable sort keeps that
	// order between records of the same time.
	slices.SortStableFunc(found, func(a, b escrow.Record) int { return a.Time.Compare(b.Time) })
	return latestPerCommand(found), nil
}

// latestPerCommand keeps one record per command, its latest: a resume
// escrows again the PIN of each command it resends, the same PIN.
func latestPerCommand(recs []escrow.Record) []escrow.Record {
	var out []escrow.Record
	for i, r := range recs {
		if !slices.ContainsFunc(recs[i+1:], func(later escrow.Record) bool { return later.CommandUUID == r.CommandUUID }) {
			out = append(out, r)
		}
	}
	return out
}

// unseal returns the record's PIN, opening it with --identity when the
// escrow is encrypted.
func (opts *Options) unseal(r escrow.Record) (string, error) {
	var identities []age.Identity
	if r.Sealed() && opts.Identity != "" {
		var err error
		if identities, err = escrow.ReadIdentities(opts.Identity); err != nil {
			return "", &exitcode.UsageError{Err: err}
		}
	}
	pin, err := r.Unseal(identities)
	switch {
	case errors.Is(err, escrow.ErrNoIdentity):
		return "", exitcode.Usagef("the PIN of %s in %s is encrypted: give --identity FILE, the age identity it was encrypted to", r.ID, opts.Escrow)
	case errors.Is(err, escrow.ErrWrongIdentity):
		return "", exitcode.Usagef("--identity %s does not open the PIN of %s (command %s): it was encrypted to another age key", opts.Identity, r.ID, r.CommandUUID)
	}
	return pin, err
}

// noteOthers tells, on stderr, which of the device's records was printed
// and lists the others: the latest lock may never have reached the Mac.
func (opts *Options) noteOthers(found []escrow.Record, chosen escrow.Record) {
	w := opts.IO.ErrOut
	fmt.Fprintf(w, "note: %d PINs are escrowed for %s; printed the one of command %s (%s).\n",
		len(found), chosen.ID, chosen.CommandUUID, chosen.Time.UTC().Format(time.RFC3339))
	fmt.Fprintln(w, "note: each was escrowed before its lock was sent; if that lock never reached the Mac, try another:")
	for i := len(found) - 1; i >= 0; i-- {
		if r := found[i]; r.CommandUUID != chosen.CommandUUID {
			fmt.Fprintf(w, "  %s  command %s  (mdmctl pin --command-uuid %s %s)\n", r.Time.UTC().Format(time.RFC3339), r.CommandUUID, r.CommandUUID, r.ID)
		}
	}
}
