// Package realvpstest decides, the same way in every package, whether a test that boots real
// VPSes (package realvps) runs here. It is apart from realvps so the rachel-admin binary does not
// link the testing package.
package realvpstest

import (
	"testing"

	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
)

// Require makes a test that boots real VPSes run only where it can. Without root it is skipped,
// the reason printed and noted in realvps.SkipNoteFile for `make test` to show (the README's
// documented exception: real VPSes need root). As root, a missing program or Debian package fails
// the test loudly, as every other missing tool does: `make test` installs them (.ci/deps.sh). who
// is the package, for the note.
func Require(t testing.TB, who string) {
	t.Helper()
	skip, fail := realvps.Unavailable()
	if skip != "" {
		realvps.NoteSkip(who, skip)
		t.Skipf("skipping the real-VPS test: %s", skip)
	}
	if fail != "" {
		t.Fatal(fail)
	}
}
