package drivers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mdmctl/mdmctl/pkg/server"
)

func TestEveryKindDescribesItself(t *testing.T) {
	kinds := server.Kinds()
	if len(kinds) < 5 {
		t.Fatalf("registered kinds %v", kinds)
	}
	defaults := 0
	for _, k := range kinds {
		d, _ := server.Lookup(k)
		if d.Default {
			defaults++
		}
		if d.About == "" || d.Limits.MaxIDs < 1 || d.Limits.MaxIDBytes < 1 {
			t.Errorf("%s: incomplete description %+v", k, d)
		}
	}
	if defaults != 1 || kinds[0] != server.DefaultKind() {
		t.Errorf("want exactly one default kind, listed first: %v", kinds)
	}
}

// TestNoKindSwitchOutsideServer keeps knowledge of the kinds in their
// packages: outside pkg/server, no code compares anything with a kind's
// name, switches on a .Kind field, or names a kind package's Kind constant. Tests are exempt:
// they set up the kinds they test.
func TestNoKindSwitchOutsideServer(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	kinds := server.Kinds()
	isKindName := func(e ast.Expr) bool {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return false
		}
		s, err := strconv.Unquote(lit.Value)
		return err == nil && slices.Contains(kinds, s)
	}
	isKindField := func(e ast.Expr) bool {
		sel, ok := e.(*ast.SelectorExpr)
		return ok && sel.Sel.Name == "Kind"
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == filepath.Join("pkg", "server") || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		kindPkgs := map[string]bool{}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/mdmctl/mdmctl/pkg/server/") {
				name := filepath.Base(p)
				if imp.Name != nil {
					name = imp.Name.Name
				}
				kindPkgs[name] = true
			}
		}
		report := func(n ast.Node, what string) {
			t.Errorf("%s: %s (describe it in the kind's Driver instead)", fset.Position(n.Pos()), what)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && (isKindName(n.X) || isKindName(n.Y)) {
					report(n, "compares a server kind")
				}
			case *ast.SwitchStmt:
				if n.Tag != nil && isKindField(n.Tag) {
					report(n, "switches on a server kind")
				}
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && kindPkgs[id.Name] && n.Sel.Name == "Kind" {
					report(n, "names a kind")
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
