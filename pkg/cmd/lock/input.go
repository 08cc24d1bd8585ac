package lock

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/fleet"
	"github.com/mdmctl/mdmctl/pkg/report"
	"github.com/mdmctl/mdmctl/pkg/targets"
)

// defaults are the values and facts the flags give every device; a CSV
// row overrides them field by field.
type defaults struct {
	lock  *apple.DeviceLock
	facts *apple.Device
}

// collected is the validated input: targets in input order, each ID once,
// and the invalid entries (kept only with --skip-invalid).
type collected struct {
	targets []*fleet.Target
	invalid []report.Device
}

// collect reads every target source, validates each entry, and collapses
// duplicates (the first occurrence wins). Without --skip-invalid the first
// invalid entry is a usage error naming its source.
func (opts *Options) collect(def defaults) (*collected, error) {
	c := &collected{}
	seen := map[string]struct{}{}
	add := func(e targets.Entry) error {
		t, err := opts.target(e, def)
		if err != nil {
			if !opts.SkipInvalid {
				if e.Line == 0 {
					return cmdutil.Usagef("invalid target: %v", err)
				}
				return cmdutil.Usagef("%s: %v", e.Source(), err)
			}
			id := e.ID
			if id == "" {
				id = "-"
			} else {
				// A device is reported once: its first line wins, valid or not.
				n := len(seen)
				if seen[id] = struct{}{}; len(seen) == n {
					return nil
				}
			}
			c.invalid = append(c.invalid, report.Device{ID: id, Source: e.Source(), Outcome: report.Invalid, Error: err.Error()})
			return nil
		}
		// One hash operation decides "new or repeat" at fleet scale.
		n := len(seen)
		if seen[t.ID] = struct{}{}; len(seen) == n {
			return nil
		}
		c.targets = append(c.targets, &t)
		return nil
	}

	stdinUsed := false
	for _, id := range opts.IDs {
		if id == "-" {
			if stdinUsed {
				return nil, cmdutil.Usagef("stdin (-) given twice")
			}
			stdinUsed = true
			if err := readSource(opts.IO.In, "-", targets.ReadIDs, add); err != nil {
				return nil, err
			}
			continue
		}
		if err := add(targets.Entry{ID: id}); err != nil {
			return nil, err
		}
	}
	for _, path := range opts.UDIDFiles {
		if err := readFile(path, "--udid-file", targets.ReadIDs, add); err != nil {
			return nil, err
		}
	}
	for _, path := range opts.CSVFiles {
		if err := readFile(path, "--csv", targets.ReadCSV, add); err != nil {
			return nil, err
		}
	}
	return c, nil
}

type reader func(io.Reader, string, func(targets.Entry) error) error

func readFile(path, flag string, read reader, add func(targets.Entry) error) error {
	f, err := os.Open(path)
	if err != nil {
		return cmdutil.Usagef("invalid %s %s: %v", flag, path, cmdutil.PathErr(err))
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return cmdutil.Usagef("invalid %s %s: is a directory", flag, path)
	}
	return readSource(f, path, read, add)
}

func readSource(r io.Reader, name string, read reader, add func(targets.Entry) error) error {
	err := read(r, name, add)
	if _, isUsage := err.(*cmdutil.UsageError); err != nil && !isUsage {
		return &cmdutil.UsageError{Err: err}
	}
	return err
}

// target validates one entry into a fleet target; errors never echo a PIN.
func (opts *Options) target(e targets.Entry, def defaults) (fleet.Target, error) {
	if e.Err != nil {
		return fleet.Target{}, e.Err
	}
	if err := apple.ValidateTargetID(e.ID); err != nil {
		return fleet.Target{}, err
	}
	t := fleet.Target{ID: e.ID, SourceName: e.Name, Line: e.Line, Lock: def.lock, Facts: def.facts}
	// Only a row that changes a value or a fact gets copies of its own.
	if e.Message != "" || e.Phone != "" || e.PIN != "" {
		lock := *def.lock
		t.Lock = &lock
	}
	if e.Platform != "" || e.OSVersion != "" || e.Model != "" {
		facts := *def.facts
		t.Facts = &facts
	}
	if e.Message != "" {
		if err := apple.ValidateText(e.Message); err != nil {
			return t, fmt.Errorf("invalid message: %v", err)
		}
		t.Lock.Message = e.Message
	}
	if e.Phone != "" {
		if err := apple.ValidateText(e.Phone); err != nil {
			return t, fmt.Errorf("invalid phone: %v", err)
		}
		t.Lock.PhoneNumber = e.Phone
	}
	if e.PIN != "" {
		if opts.PINGenerate {
			return t, fmt.Errorf("a pin column conflicts with --pin-generate")
		}
		if err := apple.ValidatePIN(e.PIN); err != nil {
			return t, fmt.Errorf("invalid pin: %v", err)
		}
		t.Lock.PIN = e.PIN
	}
	if e.Platform != "" {
		p, err := apple.ParsePlatform(e.Platform)
		if err != nil {
			return t, err
		}
		t.Facts.Platform = p
	}
	if e.OSVersion != "" {
		v, err := apple.ParseVersion(e.OSVersion)
		if err != nil {
			return t, err
		}
		t.Facts.OSVersion = v
	}
	if e.Model != "" {
		if err := apple.ValidateModel(e.Model); err != nil {
			return t, err
		}
		t.Facts.Model = e.Model
	}
	if err := apple.CheckConsistent(*t.Facts); err != nil {
		return t, fmt.Errorf("conflicting device facts: %v", err)
	}
	if opts.PINGenerate && mayBeMac(*t.Facts) {
		pin, err := escrow.GeneratePIN()
		if err != nil {
			return t, err
		}
		lock := *t.Lock
		lock.PIN = pin
		t.Lock, t.PINGenerated = &lock, true
	}
	return t, nil
}

// mayBeMac is true unless the facts say the device is not a Mac: a PIN is
// ignored elsewhere, but a Mac that needs one fails without it.
func mayBeMac(d apple.Device) bool {
	p := d.Platform
	if p == apple.PlatformUnknown {
		p, _, _ = apple.ModelFacts(d.Model)
	}
	return p == apple.PlatformUnknown || p == apple.PlatformMacOS
}

// lockValues reads and validates the flags' values; the PIN comes from
// --pin, --pin-file or MDMCTL_PIN and is never echoed.
func (opts *Options) lockValues() (apple.DeviceLock, error) {
	if err := apple.ValidateText(opts.Message); err != nil {
		return apple.DeviceLock{}, cmdutil.Usagef("invalid --message: %v", err)
	}
	if err := apple.ValidateText(opts.Phone); err != nil {
		return apple.DeviceLock{}, cmdutil.Usagef("invalid --phone: %v", err)
	}
	pin, source := opts.PIN, "--pin"
	if opts.PINFile != "" {
		if pin != "" {
			return apple.DeviceLock{}, cmdutil.Usagef("give the PIN once: --pin or --pin-file")
		}
		data, err := os.ReadFile(opts.PINFile)
		if err != nil {
			return apple.DeviceLock{}, cmdutil.Usagef("invalid --pin-file %s: %v", opts.PINFile, cmdutil.PathErr(err))
		}
		pin, source = strings.TrimRight(string(data), "\r\n"), "--pin-file "+opts.PINFile
	}
	if pin == "" {
		pin, source = opts.Getenv(EnvPIN), EnvPIN
	}
	if pin != "" {
		if opts.PINGenerate {
			return apple.DeviceLock{}, cmdutil.Usagef("a PIN from %s conflicts with --pin-generate", source)
		}
		if err := apple.ValidatePIN(pin); err != nil {
			return apple.DeviceLock{}, cmdutil.Usagef("invalid PIN from %s: %v", source, err)
		}
	}
	return apple.DeviceLock{PIN: pin, Message: opts.Message, PhoneNumber: opts.Phone, RequestRequiresNetworkTether: opts.NetworkTether}, nil
}

// facts parses the device facts the flags give.
func (opts *Options) facts() (apple.Device, error) {
	var d apple.Device
	p, err := apple.ParsePlatform(opts.Platform)
	if err != nil {
		return d, cmdutil.Usagef("invalid --platform: %v", err)
	}
	d.Platform = p
	if opts.OSVersion != "" {
		if d.OSVersion, err = apple.ParseVersion(opts.OSVersion); err != nil {
			return d, cmdutil.Usagef("invalid --os-version: %v", err)
		}
	}
	if opts.Model != "" {
		if err := apple.ValidateModel(opts.Model); err != nil {
			return d, cmdutil.Usagef("invalid --model: %v", err)
		}
		d.Model = opts.Model
	}
	if err := apple.CheckConsistent(d); err != nil {
		return d, cmdutil.Usagef("conflicting device facts: %v", err)
	}
	return d, nil
}

// splitIDs splits comma-separated --udid values.
func splitIDs(values []string) []string {
	var ids []string
	for _, v := range values {
		ids = append(ids, strings.Split(v, ",")...)
	}
	return ids
}
