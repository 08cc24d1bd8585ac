package jamf

import (
	"io"
	"net/http"
	"sync"
)

// MaxConnections is how many requests mdmctl has in flight to one Jamf Pro
// server at most: Jamf has no rate limit of its own, and asks API clients to
// keep to five concurrent connections so the server keeps serving its
// devices and admins ("Jamf Pro API Scalability Best Practices").
const MaxConnections = 5

// limited bounds the requests in flight through rt, each held from its
// start until its response body is closed.
type limited struct {
	rt  http.RoundTripper
	sem chan struct{}
}

// limitClient returns a copy of hc whose requests go at most n at a time.
func limitClient(hc *http.Client, n int) *http.Client {
	c := *hc
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = &limited{rt: rt, sem: make(chan struct{}, n)}
	return &c
}

func (l *limited) RoundTrip(req *http.Request) (*http.Response, error) {
	select {
	case l.sem <- struct{}{}:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	resp, err := l.rt.RoundTrip(req)
	if err != nil {
		<-l.sem
		return nil, err
	}
	resp.Body = &releasing{ReadCloser: resp.Body, release: func() { <-l.sem }}
	return resp, nil
}

// releasing gives back its slot once, when closed.
type releasing struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (r *releasing) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}
