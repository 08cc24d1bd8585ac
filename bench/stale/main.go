// Command stale measures what stale IDs cost mdmctl against NanoMDM v0.9.0
// on PostgreSQL (-storage pgsql, NanoMDM's own schema), where one ID the
// server never enrolled fails its whole request and mdmctl splits the
// batch: N IDs all enrolled ("clean") beside the same N with every
// EVERY-th one never enrolled ("stale"). Each run is the mdmctl binary as
// a whole process against a fresh database; the cases are interleaved.
// Then one more run of each through a counting proxy gives the requests.
//
//	go run ./bench/stale                 # N=10000, 1% stale, R=5
//	go run ./bench/stale -r 11 -n 10000 -every 100
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mdmctl/mdmctl/internal/nanomdmtest"
	"github.com/mdmctl/mdmctl/pkg/simdevice"
)

func main() {
	n := flag.Int("n", 10000, "IDs per run")
	every := flag.Int("every", 100, "every EVERY-th ID is stale in the stale case")
	runs := flag.Int("r", 5, "runs of each case")
	flag.Parse()
	err := run(*n, *every, *runs)
	nanomdmtest.StopPostgres()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stale:", err)
		os.Exit(1)
	}
}

type scenario struct {
	name     string
	ids      []string // the list mdmctl reads
	enrolled []string // the IDs NanoMDM knows
}

func run(n, every, runs int) error {
	work, err := os.MkdirTemp("", "bench-stale-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "mdmctl")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/mdmctl").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}

	clean := scenario{name: "clean"}
	stale := scenario{name: "stale"}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("DEV%05d", i)
		clean.ids, clean.enrolled = append(clean.ids, id), append(clean.enrolled, id)
		if i%every == 0 {
			stale.ids = append(stale.ids, fmt.Sprintf("STALE%05d", i))
		} else {
			stale.ids, stale.enrolled = append(stale.ids, id), append(stale.enrolled, id)
		}
	}

	walls := map[string][]time.Duration{}
	for range runs {
		for _, sc := range []scenario{clean, stale} {
			wall, _, err := once(bin, work, sc, false)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.name, err)
			}
			walls[sc.name] = append(walls[sc.name], wall)
		}
	}
	requests := map[string]int64{}
	for _, sc := range []scenario{clean, stale} {
		_, reqs, err := once(bin, work, sc, true)
		if err != nil {
			return fmt.Errorf("%s (counted): %w", sc.name, err)
		}
		requests[sc.name] = reqs
	}

	fmt.Printf("== NanoMDM %s on PostgreSQL, %d IDs, median of %d (cases interleaved)\n", nanomdmtest.Version, n, runs)
	for _, sc := range []scenario{clean, stale} {
		fmt.Printf("%-6s %5d stale  %8.3f s  requests %d  (runs: %s)\n", sc.name, len(sc.ids)-len(sc.enrolled),
			median(walls[sc.name]).Seconds(), requests[sc.name], seconds(walls[sc.name]))
	}
	var paired []time.Duration // stale over clean, run by run, in units of 1/1000
	for i := range walls["clean"] {
		paired = append(paired, walls["stale"][i]*1000/walls["clean"][i])
	}
	fmt.Printf("stale / clean: %.2fx (medians), %.2fx run by run (median); %d extra requests for %d stale IDs\n",
		median(walls["stale"]).Seconds()/median(walls["clean"]).Seconds(), float64(median(paired))/1000,
		requests["stale"]-requests["clean"], len(stale.ids)-len(stale.enrolled))
	return nil
}

// once locks sc.ids with mdmctl against a fresh NanoMDM on a fresh
// database, checks every ID's outcome and NanoMDM's queue, and returns the
// wall time and, when counted, the requests that reached the server.
func once(bin, work string, sc scenario, counted bool) (time.Duration, int64, error) {
	s, err := nanomdmtest.Start(nanomdmtest.Options{Storage: nanomdmtest.PgSQL})
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	// One device enrolls through NanoMDM's check-in endpoint; the rest copy
	// its rows (nanomdmtest.Server.CloneEnrollment), which is how thousands
	// enroll in a second.
	if _, err := s.Enroll(context.Background(), simdevice.Facts{UDID: "SEED"}, simdevice.Acknowledge); err != nil {
		return 0, 0, err
	}
	if err := s.CloneEnrollment("SEED", sc.enrolled); err != nil {
		return 0, 0, err
	}
	server := s.URL
	var reqs atomic.Int64
	if counted {
		target, _ := url.Parse(s.URL)
		proxy := httputil.NewSingleHostReverseProxy(target)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reqs.Add(1)
			proxy.ServeHTTP(w, r)
		}))
		defer srv.Close()
		server = srv.URL
	}

	cmd := exec.Command(bin, "lock", "-", "--yes", "--no-push", "--platform", "ios", "-o", "jsonl")
	cmd.Stdin = strings.NewReader(strings.Join(sc.ids, "\n") + "\n")
	cmd.Env = append(cleanEnv(), "MDMCTL_SERVER="+server, "MDMCTL_API_KEY="+s.APIKey,
		"HOME="+work, "XDG_CONFIG_HOME="+work+"/config", "XDG_STATE_HOME="+work+"/state")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err = cmd.Run()
	wall := time.Since(t0)
	staleCount := len(sc.ids) - len(sc.enrolled)
	if code := cmd.ProcessState.ExitCode(); (staleCount == 0 && code != 0) || (staleCount > 0 && code != 3) {
		return 0, 0, fmt.Errorf("mdmctl exited %d (%v): %s", code, err, stderr.Bytes())
	}
	if err := checkOutcomes(stdout.Bytes(), len(sc.ids), len(sc.enrolled)); err != nil {
		return 0, 0, err
	}
	got, err := s.Query("SELECT count(*), count(DISTINCT id) FROM enrollment_queue")
	if want := fmt.Sprintf("%d|%d", len(sc.enrolled), len(sc.enrolled)); err != nil || got != want {
		return 0, 0, fmt.Errorf("NanoMDM's queue holds (rows|devices) %q, %v; want %s", got, err, want)
	}
	return wall, reqs.Load(), nil
}

// checkOutcomes wants one line per ID: queued ones for the enrolled, and
// failed "not enrolled" for the rest.
func checkOutcomes(jsonl []byte, ids, enrolled int) error {
	var lines, queued, notEnrolled int
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	for sc.Scan() {
		lines++
		switch line := sc.Text(); {
		case strings.Contains(line, `"outcome":"queued"`):
			queued++
		case strings.Contains(line, `"outcome":"failed"`) && strings.Contains(line, "not enrolled"):
			notEnrolled++
		}
	}
	if lines != ids || queued != enrolled || notEnrolled != ids-enrolled {
		return fmt.Errorf("%d lines, %d queued, %d not enrolled; want %d, %d, %d", lines, queued, notEnrolled, ids, enrolled, ids-enrolled)
	}
	return nil
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MDMCTL_") {
			out = append(out, kv)
		}
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)/2]
}

func seconds(ds []time.Duration) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.3f", d.Seconds())
	}
	return b.String()
}
