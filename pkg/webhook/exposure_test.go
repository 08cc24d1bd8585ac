package webhook

import "testing"

func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9099": true, "127.1.2.3:0": true, "[::1]:9099": true, "localhost:9099": true, "LOCALHOST:1": true,
		"0.0.0.0:9099": false, ":9099": false, "[::]:9099": false, "192.168.1.5:9099": false,
		"mdmctl-host:9099": false, "[::ffff:0.0.0.0]:1": false, "10.0.0.1:0": false,
	} {
		got, err := LoopbackOnly(addr)
		if err != nil || got != want {
			t.Errorf("LoopbackOnly(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}
	for _, addr := range []string{"9099", "127.0.0.1", ""} {
		if _, err := LoopbackOnly(addr); err == nil {
			t.Errorf("LoopbackOnly(%q) accepted an address without a port", addr)
		}
	}
}
