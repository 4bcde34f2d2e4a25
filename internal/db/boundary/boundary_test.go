package boundary

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// allowed are the places outside internal/db that may hold SQL, each for a reason:
var allowed = []struct{ path, why string }{
	{"internal/db/", "the data boundary: sqlc's output of queries/, its hand-written helpers and their tests"},
	{"internal/dbtest/", "test infrastructure: creates, clones and drops a database per test (identifiers cannot be query parameters)"},
	{"internal/pgcluster/", "cluster administration: CREATE DATABASE for the bench (an identifier, not a parameter)"},
}

// sqlStatement matches a string literal that is (or begins) an SQL statement. The app's SQL is
// written in upper case; lower-case statements are matched in forms prose does not take (a WHERE,
// a column list, an assignment).
var sqlStatement = regexp.MustCompile(`^\s*(?:` +
	`SELECT\s|INSERT\s+INTO\s|UPDATE\s+\S+\s+SET\s|DELETE\s+FROM\s|WITH\s+\S+\s+AS\s*\(|MERGE\s+INTO\s|` +
	`LISTEN\s|UNLISTEN\s|NOTIFY\s|TRUNCATE\s|ANALYZE\b|VACUUM\b|COPY\s|` +
	`(?:CREATE|DROP|ALTER)\s+(?:TABLE|DATABASE|INDEX|SCHEMA|FUNCTION|TRIGGER|TYPE|VIEW)\b|` +
	`select\s+\S.*\s+from\s+\w+\s+where\s|insert\s+into\s+\w+\s*\(|delete\s+from\s+\w+\s+where\s|update\s+\w+\s+set\s+\w+\s*=` +
	`)`)

// riverTable is River's job table, spelled so that this file does not name it.
var riverTable = "river" + "_job"

// TestNoSQLOutsideDB fails for every Go file outside internal/db (and the allowances above) with a
// string literal holding SQL: every query lives in queries/ and runs through sqlc's code. Test
// files may arrange and inspect rows directly. No Go file at all may name River's job table:
// River is used through its API (JobList, its driver, rivertest); its migrations are River's.
func TestNoSQLOutsideDB(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata" || d.Name() == "test-artifacts") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		checked++
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(src), riverTable) {
			t.Errorf("%s names River's table %s: use River's API (Client.JobList, riverdriver, rivertest)", rel, riverTable)
		}
		if strings.HasSuffix(path, "_test.go") || isAllowed(rel) {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if sqlStatement.MatchString(s) {
				t.Errorf("%s: SQL outside internal/db (move it to queries/ and run `make generate`): %.60q", fset.Position(lit.Pos()), s)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("checked only %d Go files under %s: wrong root?", checked, root)
	}
}

func isAllowed(rel string) bool {
	for _, a := range allowed {
		if strings.HasPrefix(rel, a.path) {
			return true
		}
	}
	return false
}

// TestSQLStatementPattern keeps the pattern honest: it finds SQL, also split over lines or in
// lower case, and leaves prose, routes and identifiers alone.
func TestSQLStatementPattern(t *testing.T) {
	for _, s := range []string{
		"SELECT count(*) FROM subscriptions", "\n\t\tSELECT id FROM x", "INSERT INTO customers (email) VALUES ($1)",
		"UPDATE subscriptions SET x = 1", "DELETE FROM audit_log", "WITH c AS (SELECT 1) SELECT * FROM c",
		"LISTEN subscription_changed", "CREATE DATABASE x", "DROP DATABASE IF EXISTS x", "ANALYZE",
		"select id from subscriptions where id = $1", "update subscriptions set status = 'x'",
		"insert into customers (email) values ($1)",
		"SELECT pg_try_advisory_lock(hashtextextended($1, 0))", "TRUNCATE customers",
	} {
		if !sqlStatement.MatchString(s) {
			t.Errorf("not recognised as SQL: %q", s)
		}
	}
	for _, s := range []string{
		"DELETE /servers/{id}", "GET|DELETE /_sim/stats", "Select a plan", "Update the customer",
		"delete the server", "select", "UPDATE", "with the event timeline", "Created", "analyze this",
		"insert the key into the pool", "create table", "Drop the VPS", "Select a plan from the list",
		"Delete from Hetzner", "Insert into the pool",
	} {
		if sqlStatement.MatchString(s) {
			t.Errorf("prose or a route taken for SQL: %q", s)
		}
	}
}
