// Package history is the lasting record of every lock mdmctl sends: which
// server, device and command, when and by whom, where its PIN is escrowed
// (never the PIN), what the server did with it and what the device answered.
// `mdmctl history` and `mdmctl status` read it, and a lock run reads it before
// it sends so that a Mac is never given a second PIN by accident.
//
// The run journal (package journal) is one run's work list, kept for
// --resume; the history outlives runs and answers "what became of the locks
// sent to this device". A row is written before its request goes out
// (outcome "sending") and updated with the server's answer and, later, the
// device's.
//
// The store is SQLite through modernc.org/sqlite, a translation of SQLite's
// C source to Go: mdmctl stays one static binary built with CGO_ENABLED=0 for
// every platform it ships on, and SQLite brings what a local record needs:
// atomic, durable transactions, safe concurrent use by several mdmctl
// processes (WAL journal, a busy timeout, write transactions that take the
// lock up front), and queries by device and time. The file is created with
// mode 0600 in a folder of mode 0700.
//
// Commits are not synced to disk one by one (WAL with synchronous=NORMAL):
// a killed or crashed mdmctl loses nothing, a power loss may lose the last
// commits but never corrupts the file. Syncing each would put a disk flush
// before every request of a run; the run journal, synced before each
// request, is what a run is resumed from after a power loss.
package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/mdmctl/mdmctl/pkg/apple"
	"github.com/mdmctl/mdmctl/pkg/journal"
	"github.com/mdmctl/mdmctl/pkg/report"
)

// Sending is the outcome of a lock whose request is going out and has no
// answer yet: after a crash it reads "may have reached the server".
const Sending report.Outcome = "sending"

// PIN kinds a lock can carry.
// They are the run journal's words for the same facts.
const (
	PINNone      = ""
	PINGenerated = journal.PINGenerated // kept in the escrow file PINEscrow names
	PINGiven     = journal.PINGiven     // by --pin, --pin-file, MDMCTL_PIN or a CSV column: not kept anywhere by mdmctl
	PINServer    = "server"             // made by the server, kept in the escrow file PINEscrow names
)

// Lock is one device's DeviceLock as recorded.
type Lock struct {
	ID          int64          `json:"-"`
	Time        time.Time      `json:"time"`
	Server      string         `json:"server"`
	Context     string         `json:"context,omitempty"`
	Kind        string         `json:"kind"`
	Device      string         `json:"device"`
	Serial      string         `json:"serial,omitempty"`
	Platform    string         `json:"platform,omitempty"`
	CommandUUID string         `json:"command_uuid"`
	User        string         `json:"user,omitempty"`
	PIN         string         `json:"pin,omitempty"` // PINNone, PINGenerated or PINGiven; never the PIN
	PINEscrow   string         `json:"pin_escrow,omitempty"`
	Outcome     report.Outcome `json:"outcome"`
	Error       string         `json:"error,omitempty"`
	// Reference is the server's own name for the command, when it has one
	// (a vendor API's command UUID): what `mdmctl status` asks it about.
	Reference string `json:"server_reference,omitempty"`
	// Response is the device's own answer, once it came.
	Response   *apple.Response `json:"response,omitempty"`
	AnsweredAt time.Time       `json:"answered_at,omitzero"`
	Updated    time.Time       `json:"updated"`
}

// Holds reports whether the lock may still be on the device or took
// effect: its request is out with no answer yet, it is queued, or the
// device acknowledged it. A new lock with another PIN must not follow it.
func (l Lock) Holds() bool {
	switch l.Outcome {
	case Sending, report.Queued, report.QueuedNotPushed, report.Unknown, report.NoAnswer, report.Acknowledged:
		return true
	}
	return false
}

// Awaits reports whether the lock awaits the device's answer: it went out
// (or may have) and no final answer came.
func (l Lock) Awaits() bool { return l.Holds() && l.Outcome != report.Acknowledged }

// Update is what became of one device's lock.
type Update struct {
	Server      string
	CommandUUID string
	Device      string
	Outcome     report.Outcome
	Error       string
	// Reference, when set, is the server's name for the command; it is
	// kept when later updates come without one.
	Reference string
	// Response, when set, is the device's answer; it is kept once given.
	Response *apple.Response
	At       time.Time
}

// Store is an open history file.
type Store struct {
	db   *sql.DB
	path string
}

// DefaultPath is the history's path under stateHome (XDG_STATE_HOME, or
// ~/.local/state).
func DefaultPath(stateHome string) string {
	return filepath.Join(stateHome, "mdmctl", "history.db")
}

const schema = `
CREATE TABLE IF NOT EXISTS locks (
	id           INTEGER PRIMARY KEY,
	time         TEXT NOT NULL,
	server       TEXT NOT NULL,
	context      TEXT NOT NULL DEFAULT '',
	kind         TEXT NOT NULL,
	device       TEXT NOT NULL,
	serial       TEXT NOT NULL DEFAULT '',
	platform     TEXT NOT NULL DEFAULT '',
	command_uuid TEXT NOT NULL,
	reference    TEXT NOT NULL DEFAULT '',
	os_user      TEXT NOT NULL DEFAULT '',
	pin          TEXT NOT NULL DEFAULT '',
	pin_escrow   TEXT NOT NULL DEFAULT '',
	outcome      TEXT NOT NULL,
	error        TEXT NOT NULL DEFAULT '',
	response     TEXT NOT NULL DEFAULT '',
	answered_at  TEXT NOT NULL DEFAULT '',
	updated      TEXT NOT NULL,
	UNIQUE (server, command_uuid, device)
);
CREATE INDEX IF NOT EXISTS locks_device ON locks (device, time);
CREATE TABLE IF NOT EXISTS pin_reads (
	id      INTEGER PRIMARY KEY,
	time    TEXT NOT NULL,
	device  TEXT NOT NULL,
	os_user TEXT NOT NULL DEFAULT ''
);`

// Open opens the history at path, creating it (mode 0600, its folder 0700)
// when missing.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("history %s: %w", path, unwrapPath(err))
	}
	// Create the file ourselves so that its mode is ours, not the umask's;
	// SQLite gives its -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", path, unwrapPath(err))
	}
	f.Close()
	dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: url.Values{
		"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)"},
		"_txlock": {"immediate"},
	}.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	// One connection: the process's writes queue here rather than in
	// SQLite's busy handler.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	if err := migrate(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// migrate adds to a file an earlier mdmctl made the columns it lacks.
func migrate(db *sql.DB) error {
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('locks') WHERE name = 'reference'`).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := db.Exec(`ALTER TABLE locks ADD COLUMN reference TEXT NOT NULL DEFAULT ''`)
	if err != nil && strings.Contains(err.Error(), "duplicate column name") {
		return nil // another mdmctl opening the file added it meanwhile
	}
	return err
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Path is the file the store reads and writes.
func (s *Store) Path() string { return s.path }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseStamp(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// Sending records locks whose request is about to go out, all in one
// transaction. A lock sent again under the same server, CommandUUID and
// device (a resume, a retry) keeps its row, its first time and any answer
// the device already gave.
func (s *Store) Sending(ctx context.Context, locks []Lock) error {
	const cols = 13
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// Many rows a statement: at fleet scale the statements, not the
		// disk, are the cost.
		for start := 0; start < len(locks); start += rowsPerStatement {
			chunk := locks[start:min(start+rowsPerStatement, len(locks))]
			args := make([]any, 0, cols*len(chunk))
			for _, l := range chunk {
				args = append(args, stamp(l.Time), l.Server, l.Context, l.Kind, l.Device, l.Serial, l.Platform,
					l.CommandUUID, l.User, l.PIN, l.PINEscrow, string(Sending), stamp(l.Time))
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO locks
				(time, server, context, kind, device, serial, platform, command_uuid, os_user, pin, pin_escrow, outcome, updated)
				VALUES `+placeholders(len(chunk), cols)+`
				ON CONFLICT (server, command_uuid, device) DO UPDATE SET
					outcome = CASE response WHEN '' THEN excluded.outcome ELSE outcome END,
					error = CASE response WHEN '' THEN '' ELSE error END, updated = excluded.updated,
					os_user = excluded.os_user, pin = excluded.pin, pin_escrow = excluded.pin_escrow,
					serial = CASE excluded.serial WHEN '' THEN serial ELSE excluded.serial END,
					platform = CASE excluded.platform WHEN '' THEN platform ELSE excluded.platform END`, args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// rowsPerStatement keeps a statement's parameters well under SQLite's limit.
const rowsPerStatement = 200

// placeholders is "(?, ?), (?, ?)" for rows rows of cols values.
func placeholders(rows, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// Record applies updates, all in one transaction. An update for a lock
// the history does not hold is ignored. A device's answer, once recorded,
// is not replaced by a later queue outcome without one (a resume that
// finds the command already queued), nor is the server's reference.
func (s *Store) Record(ctx context.Context, updates []Update) error {
	if len(updates) == 0 {
		return nil
	}
	// The devices of one request mostly share their outcome: one
	// statement updates each such group.
	type group struct {
		server, uuid, outcome, err, resp, at string
	}
	var order []group
	devices := map[group][]any{}
	var refs []any // server, command_uuid, device, reference of each update naming one
	for _, u := range updates {
		if u.Reference != "" {
			refs = append(refs, u.Server, u.CommandUUID, u.Device, u.Reference)
		}
		g := group{server: u.Server, uuid: u.CommandUUID, outcome: string(u.Outcome), err: u.Error, at: stamp(u.At)}
		if u.Response != nil {
			b, err := json.Marshal(u.Response)
			if err != nil {
				return err
			}
			g.resp = string(b)
		}
		if _, ok := devices[g]; !ok {
			order = append(order, g)
		}
		devices[g] = append(devices[g], u.Device)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, g := range order {
			answered := ""
			if g.resp != "" {
				answered = g.at
			}
			ids := devices[g]
			for start := 0; start < len(ids); start += rowsPerStatement {
				chunk := ids[start:min(start+rowsPerStatement, len(ids))]
				args := append([]any{g.outcome, g.err, g.resp, answered, g.at, g.server, g.uuid, g.resp}, chunk...)
				if _, err := tx.ExecContext(ctx, `UPDATE locks SET outcome = ?, error = ?, response = ?, answered_at = ?, updated = ?
					WHERE server = ? AND command_uuid = ? AND (? != '' OR response = '') AND device IN `+placeholders(1, len(chunk)), args...); err != nil {
					return err
				}
			}
		}
		// Each device has its own reference: set apart, so that one
		// statement still records a request's shared outcome.
		const refCols = 4
		for start := 0; start < len(refs); start += refCols * rowsPerStatement {
			chunk := refs[start:min(start+refCols*rowsPerStatement, len(refs))]
			if _, err := tx.ExecContext(ctx, `WITH v (server, command_uuid, device, reference) AS (VALUES `+placeholders(len(chunk)/refCols, refCols)+`)
				UPDATE locks SET reference = v.reference FROM v
				WHERE locks.server = v.server AND locks.command_uuid = v.command_uuid AND locks.device = v.device`, chunk...); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("history %s: %w", s.path, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("history %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("history %s: %w", s.path, err)
	}
	return nil
}

// Filter selects locks; zero fields select everything.
type Filter struct {
	Devices []string
	// Serial selects the locks of the device given by this serial number.
	Serial string
	Since  time.Time
	Server string
}

// List returns the locks the filter selects, oldest first.
func (s *Store) List(ctx context.Context, f Filter) ([]Lock, error) {
	var (
		where []string
		args  []any
	)
	if len(f.Devices) > 0 {
		where = append(where, "device IN ("+strings.TrimSuffix(strings.Repeat("?,", len(f.Devices)), ",")+")")
		for _, d := range f.Devices {
			args = append(args, d)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, stamp(f.Since))
	}
	if f.Server != "" {
		where = append(where, "server = ?")
		args = append(args, f.Server)
	}
	if f.Serial != "" {
		where = append(where, "serial = ?")
		args = append(args, f.Serial)
	}
	q := `SELECT id, time, server, context, kind, device, serial, platform, command_uuid, reference, os_user, pin, pin_escrow,
		outcome, error, response, answered_at, updated FROM locks`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY time, id", args...)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []Lock
	for rows.Next() {
		var (
			l                          Lock
			t, outcome, resp, answered string
			updated                    string
		)
		if err := rows.Scan(&l.ID, &t, &l.Server, &l.Context, &l.Kind, &l.Device, &l.Serial, &l.Platform, &l.CommandUUID,
			&l.Reference, &l.User, &l.PIN, &l.PINEscrow, &outcome, &l.Error, &resp, &answered, &updated); err != nil {
			return nil, fmt.Errorf("history %s: %w", s.path, err)
		}
		l.Time, l.Outcome, l.AnsweredAt, l.Updated = parseStamp(t), report.Outcome(outcome), parseStamp(answered), parseStamp(updated)
		if resp != "" {
			var r apple.Response
			if json.Unmarshal([]byte(resp), &r) == nil {
				l.Response = &r
			}
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history %s: %w", s.path, err)
	}
	return out, nil
}

// Latest returns, per device among devices, its most recent lock on server.
func (s *Store) Latest(ctx context.Context, server string, devices []string) (map[string]Lock, error) {
	out := map[string]Lock{}
	// Look the devices up in chunks: SQLite bounds the parameters of one statement.
	for start := 0; start < len(devices); start += 500 {
		locks, err := s.List(ctx, Filter{Server: server, Devices: devices[start:min(start+500, len(devices))]})
		if err != nil {
			return nil, err
		}
		for _, l := range locks {
			out[l.Device] = l // oldest first: the last one wins
		}
	}
	return out, nil
}

// LatestOf returns the most recent lock of the device named key, by the ID
// it was locked under or else by its serial number, preferring a lock whose
// PIN went to an escrow (the one a help-desk call needs); found is false
// when the history holds none.
func (s *Store) LatestOf(ctx context.Context, key string) (l Lock, found bool, err error) {
	for _, f := range []Filter{{Devices: []string{key}}, {Serial: key}} {
		locks, err := s.List(ctx, f)
		if err != nil {
			return l, false, err
		}
		if len(locks) == 0 {
			continue
		}
		for i := len(locks) - 1; i >= 0; i-- {
			if locks[i].PINEscrow != "" {
				return locks[i], true, nil
			}
		}
		return locks[len(locks)-1], true, nil
	}
	return l, false, nil
}

// Devices lists every device the history has a lock for on server (on
// any server when it is ""), for completion.
func (s *Store) Devices(ctx context.Context, server string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT device FROM locks WHERE ? = '' OR server = ? ORDER BY device`, server, server)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// PINRead is one reading of a device's PIN (`mdmctl pin`).
type PINRead struct {
	Time   time.Time
	Device string
	User   string
}

// RecordPINRead records that user read device's PIN at the time at: the
// help desk's audit trail. It is meant for `mdmctl pin`, which calls it
// before it prints the PIN.
func (s *Store) RecordPINRead(ctx context.Context, device, user string, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pin_reads (time, device, os_user) VALUES (?, ?, ?)`, stamp(at), device, user)
		return err
	})
}

// PINReads lists the readings of device's PIN, oldest first.
func (s *Store) PINReads(ctx context.Context, device string) ([]PINRead, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT time, device, os_user FROM pin_reads WHERE device = ? ORDER BY time, id`, device)
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", s.path, err)
	}
	defer rows.Close()
	var out []PINRead
	for rows.Next() {
		var (
			r PINRead
			t string
		)
		if err := rows.Scan(&t, &r.Device, &r.User); err != nil {
			return nil, err
		}
		r.Time = parseStamp(t)
		out = append(out, r)
	}
	return out, rows.Err()
}
