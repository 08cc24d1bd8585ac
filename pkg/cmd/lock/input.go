package lock

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/cmdutil"
	"github.com/mdmctl/mdmctl/pkg/dispatch"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/exitcode"
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
	targets []*dispatch.Target
	invalid []report.Device
	// serials are entries given by serial number alone (--serial, CSV rows
	// with a serial and no udid), resolved to targets through the server;
	// unresolved are those it does not know.
	serials    []targets.Entry
	unresolved []report.Device
	def        defaults
}

// idWidth is the length of the longest ID, for aligned text columns.
func (c *collected) idWidth() int {
	w := 0
	for _, t := range c.targets {
		w = max(w, len(t.ID))
	}
	for _, d := range append(c.invalid, c.unresolved...) {
		w = max(w, len(d.ID))
	}
	return w
}

// maxInput bounds one ID list or CSV file; a million devices fit in 64 MiB.
const maxInput = 256 << 20

// input is one source of targets, read whole before parsing so the
// collection can be sized once: at fleet scale, growing the set of seen IDs
// cost more than everything else mdmctl does before the first request.
type input struct {
	name string // "-" for stdin, else the path
	read func(text, name string, add func(targets.Entry) error) error
	text string
	id   string // a command-line ID instead of a list
}

func readCSV(text, name string, add func(targets.Entry) error) error {
	return targets.ReadCSV(strings.NewReader(text), name, add)
}

// collect reads every target source, validates each entry, and collapses
// duplicates (the first occurrence wins). Without --skip-invalid the first
// invalid entry is a usage error naming its source.
func (opts *Options) collect(def defaults) (*collected, error) {
	inputs, size, err := opts.inputs()
	if err != nil {
		return nil, err
	}
	c := &collected{targets: make([]*dispatch.Target, 0, size), def: def}
	// Targets live in one block sized from the input, not one allocation each.
	slab := make([]dispatch.Target, 0, size)
	seen := make(map[string]struct{}, size)
	serialSeen := map[string]bool{}
	add := func(e targets.Entry) error {
		bySerial := e.ID == "" && e.Serial != ""
		if bySerial {
			// Checked now, as if the serial were the ID: bad input stops
			// the run before the server is asked.
			e.ID = e.Serial
		}
		t, err := opts.target(e, def)
		if bySerial && err == nil {
			if !serialSeen[e.Serial] {
				serialSeen[e.Serial] = true
				e.ID = ""
				c.serials = append(c.serials, e)
			}
			return nil
		}
		if err != nil {
			if !opts.SkipInvalid {
				if e.Line == 0 {
					return exitcode.Usagef("invalid target: %v", err)
				}
				return exitcode.Usagef("%s: %v", e.Source(), err)
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
		// One hash operation decides "new or repeat".
		n := len(seen)
		if seen[t.ID] = struct{}{}; len(seen) == n {
			return nil
		}
		if len(slab) == cap(slab) {
			slab = make([]dispatch.Target, 0, 1024)
		}
		slab = append(slab, t)
		c.targets = append(c.targets, &slab[len(slab)-1])
		return nil
	}
	for _, in := range inputs {
		if in.read == nil {
			err = add(targets.Entry{ID: in.id})
		} else {
			err = in.read(in.text, in.name, add)
			if _, isUsage := err.(*exitcode.UsageError); err != nil && !isUsage {
				err = &exitcode.UsageError{Err: err}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// inputs reads every source in command-line order (arguments and --udid
// with stdin where "-" stands, then --udid-file, then --csv) and estimates
// the number of entries.
func (opts *Options) inputs() ([]input, int, error) {
	var inputs []input
	size := 0
	stdinUsed := false
	for _, id := range opts.IDs {
		if id != "-" {
			inputs = append(inputs, input{id: id})
			size++
			continue
		}
		if stdinUsed {
			return nil, 0, exitcode.Usagef("stdin (-) given twice")
		}
		stdinUsed = true
		data, err := readAll(opts.IO.In, "stdin")
		if err != nil {
			return nil, 0, err
		}
		inputs = append(inputs, input{name: "-", read: targets.ReadIDs, text: string(data)})
		size += bytes.Count(data, []byte{'\n'}) + 1
	}
	files := func(paths []string, flag string, read func(string, string, func(targets.Entry) error) error) error {
		for _, path := range paths {
			f, err := os.Open(path)
			if err != nil {
				return exitcode.Usagef("invalid %s %s: %v", flag, path, cmdutil.PathErr(err))
			}
			info, err := f.Stat()
			if err == nil && info.IsDir() {
				err = errors.New("is a directory")
			}
			var data []byte
			if err == nil {
				data, err = readAll(f, path)
			}
			f.Close()
			if err != nil {
				return exitcode.Usagef("invalid %s %s: %v", flag, path, err)
			}
			inputs = append(inputs, input{name: path, read: read, text: string(data)})
			size += bytes.Count(data, []byte{'\n'}) + 1
		}
		return nil
	}
	if err := files(opts.UDIDFiles, "--udid-file", targets.ReadIDs); err != nil {
		return nil, 0, err
	}
	if err := files(opts.CSVFiles, "--csv", readCSV); err != nil {
		return nil, 0, err
	}
	return inputs, size, nil
}

func readAll(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	switch {
	case err != nil:
		return nil, exitcode.Usagef("reading %s: %v", name, err)
	case len(data) > maxInput:
		return nil, exitcode.Usagef("%s is larger than %d MiB", name, maxInput>>20)
	}
	return data, nil
}

// target validates one entry into a fleet target; errors never echo a PIN.
func (opts *Options) target(e targets.Entry, def defaults) (dispatch.Target, error) {
	if e.Err != nil {
		return dispatch.Target{}, e.Err
	}
	if err := apple.ValidateTargetID(e.ID); err != nil {
		return dispatch.Target{}, err
	}
	t := dispatch.Target{ID: e.ID, Serial: e.Serial, SourceName: e.Name, Line: e.Line, Lock: def.lock, Facts: def.facts}
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
			return t, fmt.Errorf("invalid PIN: %v", err)
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
	if opts.PINGenerate && apple.MayBeMac(*t.Facts) {
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

// lockValues reads and validates the flags' values; the PIN comes from
// --pin, --pin-file or MDMCTL_PIN and is never echoed.
func (opts *Options) lockValues() (apple.DeviceLock, error) {
	if err := apple.ValidateText(opts.Message); err != nil {
		return apple.DeviceLock{}, exitcode.Usagef("invalid --message: %v", err)
	}
	if err := apple.ValidateText(opts.Phone); err != nil {
		return apple.DeviceLock{}, exitcode.Usagef("invalid --phone: %v", err)
	}
	pin, source := opts.PIN, "--pin"
	if opts.PINFile != "" {
		if pin != "" {
			return apple.DeviceLock{}, exitcode.Usagef("give the PIN once: --pin or --pin-file")
		}
		data, err := os.ReadFile(opts.PINFile)
		if err != nil {
			return apple.DeviceLock{}, exitcode.Usagef("invalid --pin-file %s: %v", opts.PINFile, cmdutil.PathErr(err))
		}
		pin, source = strings.TrimRight(string(data), "\r\n"), "--pin-file "+opts.PINFile
	}
	if pin == "" {
		pin, source = opts.Getenv(EnvPIN), EnvPIN
	}
	if pin != "" {
		if opts.PINGenerate {
			return apple.DeviceLock{}, exitcode.Usagef("a PIN from %s conflicts with --pin-generate", source)
		}
		if err := apple.ValidatePIN(pin); err != nil {
			return apple.DeviceLock{}, exitcode.Usagef("invalid PIN from %s: %v", source, err)
		}
	}
	return apple.DeviceLock{PIN: pin, Message: opts.Message, PhoneNumber: opts.Phone, RequestRequiresNetworkTether: opts.NetworkTether}, nil
}

// facts parses the device facts the flags give.
func (opts *Options) facts() (apple.Device, error) {
	var d apple.Device
	p, err := apple.ParsePlatform(opts.Platform)
	if err != nil {
		return d, exitcode.Usagef("invalid --platform: %v", err)
	}
	d.Platform = p
	if opts.OSVersion != "" {
		if d.OSVersion, err = apple.ParseVersion(opts.OSVersion); err != nil {
			return d, exitcode.Usagef("invalid --os-version: %v", err)
		}
	}
	if opts.Model != "" {
		if err := apple.ValidateModel(opts.Model); err != nil {
			return d, exitcode.Usagef("invalid --model: %v", err)
		}
		d.Model = opts.Model
	}
	if err := apple.CheckConsistent(d); err != nil {
		return d, exitcode.Usagef("conflicting device facts: %v", err)
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
