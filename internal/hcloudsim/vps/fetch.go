package vps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxDownload bounds what curl may write into the simulated file tree.
const maxDownload = 16 << 20

// cmdCurl simulates curl(1) for a download: `curl [-fsSL] [--retry N] [--retry-connrefused]
// [--max-time S] -o FILE URL`. It fetches over the machine's HTTP client (so a test serves
// the file on loopback) and uses curl's exit codes and messages: 6 (resolve), 7 (connect),
// 22 (--fail and HTTP >= 400), 28 (timeout), 23 (write).
func cmdCurl(p *proc, args []string) int {
	opts, rest, err := parseFlags("curl", args,
		map[string]string{"-o": "output", "--output": "output", "--retry": "retry", "-m": "maxtime", "--max-time": "maxtime"},
		map[string]string{"-f": "fail", "--fail": "fail", "-s": "silent", "--silent": "silent", "-S": "showerror",
			"--show-error": "showerror", "-L": "location", "--location": "location", "--retry-connrefused": "connrefused"})
	if err != nil {
		p.errf("%v", err)
		return 2
	}
	if len(rest) != 1 {
		p.errf("curl: the simulator fetches exactly one URL")
		return 2
	}
	if opts["output"] == "" {
		p.errf("curl: the simulator writes downloads to a file (-o FILE) only")
		return 2
	}
	u, err := url.Parse(rest[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.errf("curl: (3) URL rejected: Malformed input to a URL function")
		return 3
	}
	retries, _ := strconv.Atoi(opts["retry"])
	maxTime := 0 * time.Second
	if s := opts["maxtime"]; s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 {
			p.errf("curl: option --max-time: expected a proper numerical parameter")
			return 2
		}
		maxTime = time.Duration(f * float64(time.Second))
	}
	report := func(code int, format string, a ...any) int {
		if opts["silent"] == "" || opts["showerror"] != "" {
			p.errf("curl: (%d) "+format, append([]any{code}, a...)...)
		}
		return code
	}
	wait := p.m.cfg.CallbackRetryInterval / 3 // curl waits 1 s, doubling; scaled like the machine
	var body []byte
	code := 0
	for attempt := 0; ; attempt++ {
		var transient bool
		body, code, transient = p.fetch(u.String(), maxTime, opts["location"] != "", opts["fail"] != "", opts["connrefused"] != "", report)
		if code == 0 || !transient || attempt >= retries {
			break
		}
		if !sleepCtx(p.ctx, wait) {
			return report(28, "Operation timed out")
		}
		wait *= 2
	}
	if code != 0 {
		return code
	}
	m := p.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fs.writeFile(p.cred, p.path(opts["output"]), body, 0o644, p.cred.user, p.cred.groups[0], false); err != nil {
		return report(23, "Failure writing output to destination")
	}
	return 0
}

// fetch does one GET; it returns curl's exit code (0 on success) and whether --retry would try
// again (timeouts, HTTP 408/429/500/502/503/504, and refused connections with --retry-connrefused).
func (p *proc) fetch(rawURL string, maxTime time.Duration, follow, failHTTP, connRefusedTransient bool, report func(int, string, ...any) int) ([]byte, int, bool) {
	ctx := p.ctx
	if maxTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, maxTime)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, report(3, "URL rejected: Malformed input to a URL function"), false
	}
	req.Header.Set("User-Agent", "curl/7.88.1")
	client := *p.m.cfg.HTTPClient
	if !follow {
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	resp, err := client.Do(req)
	if err != nil {
		var dnsErr *net.DNSError
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return nil, report(28, "Operation timed out after %d milliseconds", maxTime.Milliseconds()), true
		case errors.As(err, &dnsErr):
			return nil, report(6, "Could not resolve host: %s", req.URL.Hostname()), false
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, report(7, "Failed to connect to %s port %s after 0 ms: Couldn't connect to server", req.URL.Hostname(), portOf(req.URL)), connRefusedTransient
		default:
			return nil, report(56, "Failure when receiving data from the peer"), true
		}
	}
	defer resp.Body.Close()
	if failHTTP && resp.StatusCode >= 400 {
		transient := false
		switch resp.StatusCode {
		case 408, 429, 500, 502, 503, 504:
			transient = true
		}
		return nil, report(22, "The requested URL returned error: %d", resp.StatusCode), transient
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return nil, report(56, "Failure when receiving data from the peer"), true
	}
	if len(body) > maxDownload {
		return nil, report(63, "Maximum file size exceeded (the simulator keeps at most %d bytes)", maxDownload), false
	}
	return body, 0, false
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// cmdSha256sum simulates sha256sum(1): digests of files, or `--check [--strict] [--quiet]
// LIST` with GNU's messages and exit status 1 on any mismatch or unreadable file.
func cmdSha256sum(p *proc, args []string) int {
	opts, rest, err := parseFlags("sha256sum", args, nil, map[string]string{
		"-c": "check", "--check": "check", "--strict": "strict", "--quiet": "quiet", "--status": "status", "-b": "binary", "--binary": "binary"})
	if err != nil {
		p.errf("%v", err)
		return 1
	}
	if opts["check"] == "" {
		status := 0
		for _, f := range rest {
			b, ok := p.readSource("sha256sum", f)
			if !ok {
				status = 1
				continue
			}
			sum := sha256.Sum256(b)
			fmt.Fprintf(p.stdout, "%s  %s\n", hex.EncodeToString(sum[:]), f)
		}
		return status
	}
	if len(rest) != 1 {
		p.errf("sha256sum: the simulator checks one list")
		return 1
	}
	list, ok := p.readSource("sha256sum", rest[0])
	if !ok {
		return 1
	}
	bad, unreadable, malformed, good := 0, 0, 0, 0
	for line := range strings.SplitSeq(strings.TrimRight(string(list), "\n"), "\n") {
		want, file, found := strings.Cut(line, " ")
		file = strings.TrimPrefix(strings.TrimPrefix(file, " "), "*")
		if !found || len(want) != 64 || file == "" {
			malformed++
			continue
		}
		p.m.mu.Lock()
		b, err := p.m.fs.readFile(p.cred, p.path(file))
		p.m.mu.Unlock()
		if err != nil {
			p.errf("sha256sum: %s: %v", file, err)
			if opts["status"] == "" {
				fmt.Fprintf(p.stdout, "%s: FAILED open or read\n", file)
			}
			unreadable++
			continue
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != strings.ToLower(want) {
			if opts["status"] == "" {
				fmt.Fprintf(p.stdout, "%s: FAILED\n", file)
			}
			bad++
			continue
		}
		good++
		if opts["quiet"] == "" && opts["status"] == "" {
			fmt.Fprintf(p.stdout, "%s: OK\n", file)
		}
	}
	// GNU's digest_check: a list without one well-formed line is an error of its own; otherwise
	// the warnings (ngettext's singular or plural), which --status silences.
	if good+bad+unreadable == 0 {
		p.errf("sha256sum: %s: no properly formatted checksum lines found", rest[0])
		return 1
	}
	if opts["status"] == "" {
		warn := func(n int, one, many string) {
			if n == 1 {
				p.errf("sha256sum: WARNING: 1 %s", one)
			} else if n > 1 {
				p.errf("sha256sum: WARNING: %d %s", n, many)
			}
		}
		warn(malformed, "line is improperly formatted", "lines are improperly formatted")
		warn(unreadable, "listed file could not be read", "listed files could not be read")
		warn(bad, "computed checksum did NOT match", "computed checksums did NOT match")
	}
	if bad > 0 || unreadable > 0 || (malformed > 0 && opts["strict"] != "") {
		return 1
	}
	return 0
}
