package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tools are the programs tests run, with the Debian package that installs each. .ci/deps.sh
// (run by `make test`) installs every one of these packages when run as root; a test checks that
// it names them all.
var Tools = map[string]string{
	"chromium":        "chromium",
	"cloud-init":      "cloud-init",
	"sshd":            "openssh-server",
	"ssh-keygen":      "openssh-client",
	"visudo":          "sudo",
	"sudo":            "sudo",
	"curl":            "curl",
	"systemd-analyze": "systemd",
	"systemd-nspawn":  "systemd-container",
	"nft":             "nftables",
	"ip":              "iproute2",
	"nsenter":         "util-linux",
	"localedef":       "libc-bin",
}

// SearchDirs are searched after PATH: a non-root PATH often lacks the sbin directories, where
// sshd, nft and ip live. (A variable so a test can make a tool missing.)
var SearchDirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"}

// Find returns the path of the program, or an error saying which Debian package installs it and
// that `make test` does so as root.
func Find(tool string) (string, error) { return find(tool, Tools) }

func find(tool string, tools map[string]string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	for _, d := range SearchDirs {
		p := filepath.Join(d, tool)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	pkg, ok := tools[tool]
	if !ok {
		return "", fmt.Errorf("%s is not installed, and testkit.Tools does not say which Debian package has it: add it there and to .ci/deps.sh", tool)
	}
	return "", fmt.Errorf("%s is not installed: it comes with the Debian package %s, which `make test` installs "+
		"when run as root (.ci/deps.sh); or run `sudo bash .ci/deps.sh` (or `sudo apt-get install %s`)", tool, pkg, pkg)
}

// Require returns the path of the program a test needs, failing the test when it is missing.
// Tests never skip for a missing tool: a skipped test would pass a suite that checked nothing.
func Require(t testing.TB, tool string) string {
	t.Helper()
	p, err := Find(tool)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// RequireRoot fails the test unless it runs as root (as `make test` does in CI), saying why the
// test needs it.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test must run as root (as `make test` does in CI): %s", why)
	}
}
