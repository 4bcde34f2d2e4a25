package realvps

import (
	"fmt"
	"os"
	"path/filepath"
)

// SkipNoteFile is where tests note, under the module root, why they skipped the real VPSes;
// `make test` prints it, since go test hides a passing package's skip messages.
const SkipNoteFile = "test-artifacts/real-vps-skipped.txt"

// NoteSkip appends "package: reason" to SkipNoteFile (best effort: a note that cannot be
// written changes nothing else).
func NoteSkip(who, reason string) {
	dir, err := os.Getwd()
	if err != nil {
		return
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return
		}
		dir = parent
	}
	p := filepath.Join(dir, SkipNoteFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = fmt.Fprintf(f, "real-VPS tests skipped in %s: %s\n", who, reason)
}
