package lock

import (
	"bufio"
	"context"
	"io"
	"net/url"

	"github.com/mdmctl/mdmctl/pkg/config"
	"github.com/mdmctl/mdmctl/pkg/server"
)

// readAnswer reads one line from in, or gives up when ctx ends: the first
// Ctrl-C cancels ctx while the terminal read would go on blocking.
func readAnswer(ctx context.Context, in io.Reader) (string, error) {
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(in).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		return s, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// destination names where a run sends, for the prompt: the context and the
// server's origin (never a URL's credentials), as far as they are known.
func destination(s config.Settings) string {
	origin := ""
	if u, err := url.Parse(s.Server); err == nil && u.Scheme != "" && u.Host != "" {
		origin = server.Origin(u)
	}
	switch {
	case s.Context != "" && origin != "":
		return " on " + s.Context + " (" + origin + ")"
	case s.Context != "":
		return " on " + s.Context
	case origin != "":
		return " on " + origin
	}
	return ""
}
