package sandbox

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"

	"github.com/mdmctl/mdmctl/pkg/apple"
)

// answerLog keeps the devices' final answers in a file, so that the
// sandbox, started afresh by every mdmctl run, answers `mdmctl status` for
// a lock an earlier run sent, as a server that keeps command results does.
// One JSON response a line; mode 0600.
type answerLog struct {
	mu   sync.Mutex
	path string
}

// final reports whether a response ends its command (NotNow and Idle do not).
func final(r apple.Response) bool {
	return r.CommandUUID != "" && r.Status != apple.StatusNotNow && r.Status != apple.StatusIdle
}

// add appends r; a sandbox that cannot keep it only forgets it.
func (l *answerLog) add(r apple.Response) {
	if l == nil || !final(r) {
		return
	}
	line, err := json.Marshal(r)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.Write(append(line, '\n'))
}

// all reads every kept answer, skipping lines that do not parse (a torn
// last line).
func (l *answerLog) all() []apple.Response {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []apple.Response
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r apple.Response
		if json.Unmarshal(sc.Bytes(), &r) == nil && final(r) {
			out = append(out, r)
		}
	}
	return out
}
