package nanomdmtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mdmctl/mdmctl/internal/pgtest"
)

// Storage is a NanoMDM storage backend (-storage).
type Storage string

// The backends the tests run NanoMDM on. MySQL 8 cannot run here (Debian
// ships MariaDB, and NanoMDM's schema needs MySQL 8).
const (
	InMem  Storage = "inmem"  // in memory: the tests' default
	FileKV Storage = "filekv" // files in a folder: NanoMDM's own default
	PgSQL  Storage = "pgsql"  // PostgreSQL with NanoMDM's schema, as in production
)

// Storages lists every backend the tests can run.
func Storages() []Storage { return []Storage{InMem, FileKV, PgSQL} }

// ParseStorage reads a backend name; empty is InMem.
func ParseStorage(s string) (Storage, error) {
	if s == "" {
		return InMem, nil
	}
	for _, st := range Storages() {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown NanoMDM storage %q (want inmem, filekv or pgsql)", s)
}

// storageArgs makes the backend's store in dir (filekv) or its own fresh
// database on the process's shared PostgreSQL cluster (pgsql), and returns
// NanoMDM's -storage and -storage-dsn flags.
func storageArgs(st Storage, dir string) (args []string, db string, err error) {
	switch st {
	case InMem, "":
		return []string{"-storage", "inmem", "-storage-dsn", ""}, "", nil
	case FileKV:
		return []string{"-storage", "filekv", "-storage-dsn", filepath.Join(dir, "dbkv")}, "", nil
	case PgSQL:
		c, err := pgtest.Shared()
		if err != nil {
			return nil, "", err
		}
		if db, err = freshDatabase(c); err != nil {
			return nil, "", err
		}
		return []string{"-storage", "pgsql", "-storage-dsn", c.DSN(db)}, db, nil
	}
	return nil, "", fmt.Errorf("unknown NanoMDM storage %q", st)
}

var (
	schemaMu  sync.Mutex
	schemaFor *pgtest.Cluster // the cluster whose schema template is loaded
	databases atomic.Int64
)

// schemaTemplate is a database holding NanoMDM's schema; each server gets
// a copy, which is much faster than loading the schema again.
const schemaTemplate = "nanomdm_schema"

// freshDatabase creates a new database with NanoMDM v0.9.0's own schema
// (storage/pgsql/schema.sql from the module) and returns its name.
func freshDatabase(c *pgtest.Cluster) (string, error) {
	schemaMu.Lock()
	if schemaFor != c {
		if err := loadSchemaTemplate(c); err != nil {
			schemaMu.Unlock()
			return "", err
		}
		schemaFor = c
	}
	schemaMu.Unlock()
	name := fmt.Sprintf("nanomdm_%d_%d", os.Getpid(), databases.Add(1))
	return name, c.CreateDatabase(name, schemaTemplate)
}

func loadSchemaTemplate(c *pgtest.Cluster) error {
	dir, err := moduleDir()
	if err != nil {
		return err
	}
	if err := c.CreateDatabase(schemaTemplate, ""); err != nil {
		return err
	}
	return c.LoadFile(schemaTemplate, filepath.Join(dir, "storage", "pgsql", "schema.sql"))
}

// moduleDir is NanoMDM v0.9.0's source folder in the module cache,
// downloaded when missing.
func moduleDir() (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", nanomdmModule+"@"+Version)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %v", nanomdmModule, Version, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %v", nanomdmModule, Version, err)
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", nanomdmModule, Version, m.Error)
	}
	return m.Dir, nil
}

// errNoSQL is Query's answer on a backend without a database.
var errNoSQL = errors.New("nanomdmtest: Query needs the pgsql storage")

// Query runs sql in the server's own PostgreSQL database and returns psql's
// unaligned output (a row a line, columns separated by |): how tests read
// what NanoMDM stored, e.g. its enrollment_queue.
func (s *Server) Query(sql string) (string, error) {
	if s.Storage != PgSQL {
		return "", errNoSQL
	}
	c, err := pgtest.Shared()
	if err != nil {
		return "", err
	}
	return c.Query(s.Database, sql)
}

// StopPostgres stops the PostgreSQL cluster pgsql servers share, if one
// was started. Call it from TestMain after m.Run.
func StopPostgres() { pgtest.StopShared() }

// CloneEnrollment enrolls ids on a pgsql server by copying the rows
// NanoMDM's storage wrote when device from enrolled through the check-in
// endpoint (devices and enrollments, each ID its own enrollment), in one
// statement: thousands of enrolled IDs in well under a second, where a
// signed Authenticate and TokenUpdate per device take minutes. The copies
// can be queued for exactly like from; they have no certificate
// association, so they cannot check in.
func (s *Server) CloneEnrollment(from string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	var list strings.Builder
	for i, id := range ids {
		if i > 0 {
			list.WriteByte(',')
		}
		list.WriteString(quoteLiteral(id))
	}
	src := quoteLiteral(from)
	sql := fmt.Sprintf(`BEGIN;
INSERT INTO devices (id, identity_cert, serial_number, unlock_token, unlock_token_at, authenticate, authenticate_at, token_update, token_update_at)
  SELECT n.id, d.identity_cert, d.serial_number, d.unlock_token, d.unlock_token_at, d.authenticate, d.authenticate_at, d.token_update, d.token_update_at
  FROM devices d, unnest(ARRAY[%[1]s]::text[]) AS n(id) WHERE d.id = %[2]s;
INSERT INTO enrollments (id, device_id, type, topic, push_magic, token_hex, enabled, token_update_tally, last_seen_at)
  SELECT n.id, n.id, e.type, e.topic, e.push_magic, e.token_hex, e.enabled, e.token_update_tally, e.last_seen_at
  FROM enrollments e, unnest(ARRAY[%[1]s]::text[]) AS n(id) WHERE e.id = %[2]s AND e.user_id IS NULL;
SELECT count(*) FROM enrollments WHERE id = ANY(ARRAY[%[1]s]::text[]);
COMMIT;`, list.String(), src)
	out, err := s.Query(sql)
	if err != nil {
		return fmt.Errorf("cloning the enrollment of %s: %w", from, err)
	}
	if out != strconv.Itoa(len(ids)) {
		return fmt.Errorf("cloning the enrollment of %s: %s of %d IDs enrolled (is %s enrolled?)", from, out, len(ids), from)
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
