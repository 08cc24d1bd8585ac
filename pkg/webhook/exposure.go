package webhook

import (
	"fmt"
	"net"
	"strings"
)

// LoopbackOnly reports whether a receiver listening on addr (host:port) can
// be reached only from this machine: a host of localhost, 127.0.0.0/8 or
// ::1. An empty host, 0.0.0.0 or [::] listens on every interface, and any
// other name or address may be reachable from the network; there anyone
// could post a forged answer unless events are signed.
func LoopbackOnly(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("invalid webhook listen address %q: %v", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}
