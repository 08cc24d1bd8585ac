package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/escrow"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

// deviceWorkers bounds the concurrency of device actions over many devices.
const deviceWorkers = 16

// eachDevice runs fn for every enrolled device, deviceWorkers at a time.
func eachDevice(devs []*simdevice.Device, fn func(*simdevice.Device) error) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	jobs := make(chan *simdevice.Device)
	for range deviceWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range jobs {
				if err := fn(d); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, d := range devs {
		jobs <- d
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

func (set *deviceSet) all() []*simdevice.Device {
	set.mu.Lock()
	defer set.mu.Unlock()
	out := make([]*simdevice.Device, 0, len(set.devices))
	for _, d := range set.devices {
		out = append(out, d)
	}
	return out
}

// cmdEnrollMany enrolls N devices named by a printf pattern:
// enroll-many PATTERN N [behavior] [platform=P model=M os=V].
func cmdEnrollMany(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: enroll-many PATTERN N [behavior] [key=value...]")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	set := devicesOf(ts)
	if set.server == nil {
		ts.Fatalf("enroll-many: start nanomdm first")
	}
	base, behavior := parseFacts(ts, args[2:])
	devs := make([]*simdevice.Device, n)
	for i := range devs {
		f := base
		f.UDID = fmt.Sprintf(args[0], i+1)
		d, err := simdevice.NewDevice(set.server.DeviceConfig(f, behavior))
		ts.Check(err)
		devs[i] = d
	}
	ts.Check(eachDevice(devs, func(d *simdevice.Device) error { return d.Enroll(context.Background()) }))
	set.mu.Lock()
	for _, d := range devs {
		set.devices[d.Facts.UDID] = d
	}
	set.mu.Unlock()
}

// cmdCheckInAll makes every device that has not received a command yet
// check in, again and again, until all have one or the time is up:
// checkin-all [TIMEOUT].
func cmdCheckInAll(ts *testscript.TestScript, neg bool, args []string) {
	timeout := 60 * time.Second
	if len(args) == 1 {
		var err error
		timeout, err = time.ParseDuration(args[0])
		ts.Check(err)
	}
	deadline := time.Now().Add(timeout)
	devs := devicesOf(ts).all()
	for {
		var waiting []*simdevice.Device
		for _, d := range devs {
			if len(d.Received()) == 0 {
				waiting = append(waiting, d)
			}
		}
		if len(waiting) == 0 {
			if neg {
				ts.Fatalf("every device received a command")
			}
			return
		}
		if time.Now().After(deadline) {
			if !neg {
				ts.Fatalf("%d of %d devices received no command within %s", len(waiting), len(devs), timeout)
			}
			return
		}
		ts.Check(eachDevice(waiting, func(d *simdevice.Device) error { return d.CheckIn(context.Background()) }))
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdReceivedOnceEach asserts each enrolled device received exactly one
// command delivery, and that it was a DeviceLock.
func cmdReceivedOnceEach(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("usage: received-once-each")
	}
	devs := devicesOf(ts).all()
	for _, d := range devs {
		got := d.Received()
		if len(got) != 1 || got[0].Command.RequestType != apple.RequestTypeDeviceLock {
			ts.Fatalf("%s received %d commands, want exactly one DeviceLock", d.Facts.UDID, len(got))
		}
	}
	fmt.Fprintf(ts.Stdout(), "%d devices each received exactly one DeviceLock\n", len(devs))
}

// cmdEscrowCovers asserts the escrow file holds, for every device that
// received a command, a record with that command's UUID and PIN.
func cmdEscrowCovers(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: escrow-covers FILE")
	}
	data, err := os.ReadFile(filepath.Join(ts.Getenv("WORK"), args[0]))
	ts.Check(err)
	escrowed := map[string]escrow.Record{}
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var r escrow.Record
		if err := dec.Decode(&r); err != nil {
			// A kill mid-write may truncate the last line; every complete
			// line before it must still parse.
			break
		}
		escrowed[r.CommandUUID+"/"+r.ID] = r
	}
	reached := 0
	for _, d := range devicesOf(ts).all() {
		for _, got := range d.Received() {
			reached++
			rec, ok := escrowed[got.Command.CommandUUID+"/"+d.Facts.UDID]
			if !ok {
				ts.Fatalf("%s received command %s whose PIN is not in the escrow", d.Facts.UDID, got.Command.CommandUUID)
			}
			if rec.PIN != got.Command.PIN {
				ts.Fatalf("%s: escrowed PIN differs from the PIN sent", d.Facts.UDID)
			}
		}
	}
	fmt.Fprintf(ts.Stdout(), "%d commands reached devices, every PIN escrowed (%d escrow records)\n", reached, len(escrowed))
}

// cmdWaitLines waits until FILE has at least N lines (a background run has
// got that far), failing after a minute: wait-lines FILE N.
func cmdWaitLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: wait-lines FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	path := filepath.Join(ts.Getenv("WORK"), args[0])
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && bytes.Count(data, []byte("\n")) >= n {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.Fatalf("%s did not reach %d lines within a minute", args[0], n)
}

// cmdWaitHTTP waits until URL answers (a background server is up), failing
// after 30 seconds: wait-http URL.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: wait-http URL")
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(args[0]); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("%s did not answer within 30s", args[0])
}
