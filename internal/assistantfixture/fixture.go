// Package assistantfixture is a small real assistant for tests: a POSIX shell program that the
// VPS's cloud-init downloads (ASSISTANT_ARTIFACT_URL), checks (ASSISTANT_ARTIFACT_SHA256) and
// installs at the unit's ExecStart path. Started by systemd, it checks the environment files
// injection wrote, records what it found in [StatusPath] and stays up; anything missing makes
// it exit 1, so the unit fails as a broken assistant would.
package assistantfixture

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Program is the fixture's bytes, as served.
//
//go:embed rachel-assistant.sh
var Program []byte

// SHA256 is the hex digest of [Program], for ASSISTANT_ARTIFACT_SHA256.
var SHA256 = func() string {
	sum := sha256.Sum256(Program)
	return hex.EncodeToString(sum[:])
}()

// Path is where [Handler] serves the program.
const Path = "/rachel-assistant"

// StatusPath is the file the running fixture writes on the VPS (its systemd StateDirectory):
// "started pid=…", the owner ID and SHA-256 digests of the bot token and the credentials file.
const StatusPath = "/var/lib/rachel/assistant-status"

// Handler serves [Program] at [Path] (GET and HEAD) and 404 elsewhere.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != Path || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(Program)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(Program)
		}
	})
}

// Server serves [Program] over HTTP, for `make run`, benchmarks and test stacks.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Start serves the program on addr ("127.0.0.1:0" picks a free loopback port; a real VPS
// container needs an address it can reach, such as the host's end of its veth pair).
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("assistant fixture: listen: %w", err)
	}
	s := &Server{ln: ln, srv: &http.Server{Handler: Handler(), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the program's URL, for ASSISTANT_ARTIFACT_URL.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + Path }

// Close stops serving.
func (s *Server) Close() error { return s.srv.Close() }
