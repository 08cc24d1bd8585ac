package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mdmctl/mdmctl/pkg/webhook"
)

// cmdForgeEvent posts an unsigned NanoMDM webhook event in which UDID
// answers CMDUUID Acknowledged, as anyone who can reach the receiver could:
// forge-event ADDR UDID CMDUUID. The receiver answers 200 to an event it
// ignores as well as to one it counts, so the script judges by mdmctl's
// output.
func cmdForgeEvent(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: forge-event ADDR UDID CMDUUID")
	}
	udid, uuid := args[1], args[2]
	plist := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict><key>CommandUUID</key><string>%s</string><key>Status</key><string>Acknowledged</string><key>UDID</key><string>%s</string></dict></plist>`, uuid, udid)
	body, err := json.Marshal(webhook.Event{Topic: webhook.TopicConnect, Acknowledge: &webhook.Acknowledge{
		UDID: udid, IDs: &webhook.IDs{ID: udid, Type: "Device"}, Status: "Acknowledged", CommandUUID: uuid, RawPayload: []byte(plist),
	}})
	ts.Check(err)
	resp, err := http.Post("http://"+args[0]+"/webhook", "application/json", bytes.NewReader(body))
	ts.Check(err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		ts.Fatalf("receiver answered %s", resp.Status)
	}
}
