// Package boundary holds the check that SQL stays behind the data boundary: its test fails for a
// Go file outside internal/db that holds an SQL statement, and for any Go file naming River's
// job table. `make verify` runs it.
package boundary
