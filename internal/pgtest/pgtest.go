// Package pgtest runs a throwaway PostgreSQL cluster on loopback for tests
// and benchmarks: initdb in a temporary folder, postgres on a free port,
// databases made from templates, and psql for queries. It needs the
// PostgreSQL server binaries (Debian: apt-get install postgresql).
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mdmctl/mdmctl/internal/logbuf"
)

// Superuser is the role initdb creates and every connection uses.
const Superuser = "postgres"

// ErrNotInstalled says the PostgreSQL binaries were not found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed: no initdb on PATH or in /usr/lib/postgresql/*/bin; " +
	"install it (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@15), " +
	"or run .ci/run, which installs it")

// Cluster is a running PostgreSQL server on 127.0.0.1.
type Cluster struct {
	Port int

	bin  string // folder with initdb, postgres, psql, pg_isready
	dir  string // owns data/ and the Unix socket; removed by Close
	cmd  *exec.Cmd
	log  *logbuf.Buffer
	done chan struct{}
	stop sync.Once
	// ddl serialises CREATE DATABASE: PostgreSQL refuses to copy a
	// template that another session is copying or connected to.
	ddl sync.Mutex
}

// debianRoot holds Debian's PostgreSQL installs, one folder per major version.
var debianRoot = "/usr/lib/postgresql"

// BinDir finds the folder holding initdb and its siblings: initdb on PATH
// (symlinks resolved, since Debian keeps the real binaries in
// /usr/lib/postgresql/N/bin), else the newest /usr/lib/postgresql/*/bin.
func BinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob(filepath.Join(debianRoot, "*", "bin"))
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start runs initdb in a new temporary folder and starts postgres on a
// free loopback port, fsync off (the data is thrown away). Stop it with
// Close.
func Start() (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c, err := start(bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func start(bin, dir string) (*Cluster, error) {
	owner, err := serverUser()
	if err != nil {
		return nil, err
	}
	if owner != nil {
		if err := os.Chown(dir, int(owner.uid), int(owner.gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", Superuser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = dir
	initdb.Env = cleanEnv()
	runAs(initdb, owner)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// postgres never binds port 0 for us, so pick a free port and pick
	// again when another process wins the race for it.
	var lost []string
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c := &Cluster{Port: port, bin: bin, dir: dir, log: &logbuf.Buffer{}, done: make(chan struct{})}
		err = c.launch(data, owner)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errPortLost) {
			return nil, err
		}
		lost = append(lost, err.Error())
	}
	return nil, fmt.Errorf("postgres: no free port after 5 attempts:\n%s", strings.Join(lost, "\n"))
}

var errPortLost = errors.New("port taken")

func (c *Cluster) launch(data string, owner *account) error {
	c.cmd = exec.Command(filepath.Join(c.bin, "postgres"), "-D", data, "-p", strconv.Itoa(c.Port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=300")
	c.cmd.Dir = c.dir
	c.cmd.Env = cleanEnv()
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	runAs(c.cmd, owner)
	if err := c.cmd.Start(); err != nil {
		return err
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	if err := c.waitReady(30 * time.Second); err != nil {
		c.kill()
		return err
	}
	return nil
}

// waitReady polls pg_isready until the server accepts connections, it
// exits, or the timeout passes.
func (c *Cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-c.done:
			if log := c.log.String(); strings.Contains(log, "could not bind") || strings.Contains(log, "already in use") {
				return fmt.Errorf("%w: postgres on port %d: %s", errPortLost, c.Port, logbuf.LastLine(log))
			}
			return fmt.Errorf("postgres exited (%s) before accepting connections:\n%s", c.cmd.ProcessState, c.log)
		default:
		}
		probe := exec.Command(filepath.Join(c.bin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-t", "1")
		probe.Env = cleanEnv()
		if probe.Run() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections on port %d within %s:\n%s", c.Port, timeout, c.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops the server by its PID (a fast shutdown, then a kill if it
// lingers) and removes its folder. It is safe to call more than once.
func (c *Cluster) Close() {
	c.stop.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGINT) // postgres: fast shutdown
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			c.kill()
		}
		os.RemoveAll(c.dir)
	})
}

func (c *Cluster) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// PID is the postmaster's process ID.
func (c *Cluster) PID() int { return c.cmd.Process.Pid }

// Log is what postgres printed so far.
func (c *Cluster) Log() string { return c.log.String() }

// DSN is a lib/pq connection URL for database db.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.Port, db)
}

// CreateDatabase creates database name as a copy of template (empty for
// PostgreSQL's own template1).
func (c *Cluster) CreateDatabase(name, template string) error {
	sql := "CREATE DATABASE " + quoteIdent(name)
	if template != "" {
		sql += " TEMPLATE " + quoteIdent(template)
	}
	c.ddl.Lock()
	defer c.ddl.Unlock()
	_, err := c.Query("postgres", sql)
	return err
}

// Query runs sql (one or more statements, of any length: psql reads them
// from its stdin) in database db, stopping at the first error, and returns
// psql's unaligned, tuples-only output (a row a line, columns separated by
// |), trimmed.
func (c *Cluster) Query(db, sql string) (string, error) {
	return c.psql(db, strings.NewReader(sql))
}

// LoadFile runs the SQL file path in database db, stopping at its first error.
func (c *Cluster) LoadFile(db, path string) error {
	_, err := c.psql(db, nil, "-f", path)
	return err
}

func (c *Cluster) psql(db string, stdin io.Reader, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", Superuser, "-d", db}
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "psql"), append(base, args...)...)
	cmd.Env = cleanEnv()
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("psql on %s: %v: %s", db, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

var (
	sharedMu sync.Mutex
	shared   *Cluster
)

// Shared is one cluster for the whole process, started on first use, so
// tests pay for initdb once; give each test its own database. Stop it
// with StopShared (from TestMain); if the process dies first, the kernel
// kills postgres with it (Linux).
func Shared() (*Cluster, error) {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		c, err := Start()
		if err != nil {
			return nil, err
		}
		shared = c
	}
	return shared, nil
}

// StopShared closes the cluster Shared started, if any.
func StopShared() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Close()
		shared = nil
	}
}

// serverUser is who runs initdb and postgres: nil (ourselves) unless we
// are root, which PostgreSQL refuses; then the postgres user Debian's
// package creates, else nobody.
func serverUser() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 == nil && err2 == nil {
			return &account{uid: uint32(uid), gid: uint32(gid)}, nil
		}
	}
	return nil, errors.New("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")
}

// account is a user the server tools run as.
type account struct{ uid, gid uint32 }

// cleanEnv keeps PG* variables (PGHOST, PGDATABASE...) from redirecting
// the tools to another server, and fixes the locale.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") {
			out = append(out, kv)
		}
	}
	return append(out, "LC_ALL=C")
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
