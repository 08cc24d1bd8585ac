//go:build unix

package pgtest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestClusterDatabasesFromTemplate(t *testing.T) {
	c, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	schema := filepath.Join(t.TempDir(), "schema.sql")
	if err := os.WriteFile(schema, []byte("CREATE TABLE items (id TEXT PRIMARY KEY);\nINSERT INTO items VALUES ('from-template');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateDatabase("tmpl", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadFile("tmpl", schema); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{"one", "two"} {
		if err := c.CreateDatabase(db, "tmpl"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Query("one", "INSERT INTO items VALUES ('only-in-one')"); err != nil {
		t.Fatal(err)
	}
	for db, want := range map[string]string{"one": "from-template\nonly-in-one", "two": "from-template"} {
		got, err := c.Query(db, "SELECT id FROM items ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s holds %q, want %q", db, got, want)
		}
	}
	if _, err := c.Query("one", "INSERT INTO items VALUES ('only-in-one')"); err == nil {
		t.Error("a duplicate primary key was accepted; psql errors are lost")
	}

	pid, dir := c.PID(), c.dir
	c.Close()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postgres PID %d still exists after Close (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cluster folder %s left behind: %v", dir, err)
	}
}

func TestBinDirFindsInitdb(t *testing.T) {
	dir, err := BinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"initdb", "postgres", "psql", "pg_isready"} {
		if _, err := os.Stat(filepath.Join(dir, tool)); err != nil {
			t.Errorf("%s: %v", tool, err)
		}
	}
}

func TestBinDirOffPath(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	root := t.TempDir()
	debianRoot = root
	t.Cleanup(func() { debianRoot = "/usr/lib/postgresql" })
	if _, err := BinDir(); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("with nothing installed BinDir = %v, want ErrNotInstalled", err)
	}
	for _, v := range []string{"9", "15", "13"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, "initdb"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := BinDir()
	if want := filepath.Join(root, "15", "bin"); err != nil || got != want {
		t.Fatalf("BinDir = %q, %v; want the newest, %q", got, err, want)
	}
}
