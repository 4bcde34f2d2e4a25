package vps

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// userAgent is what cloud-init's url_helper sends: Debian 12's cloud-init is 22.4.2, as on
// Hetzner's debian-12 image (checked against a real one, internal/hcloudsim/diff_test.go).
const userAgent = "Cloud-Init/22.4.2"

// phoneHome posts the requested fields as cloud-init's phone_home module does: a form-encoded
// POST, fields it cannot fill sent as "N/A", up to tries attempts with a pause between them.
func (m *Machine) phoneHome(ph *phoneHome) {
	id := strconv.FormatInt(m.cfg.InstanceID, 10)
	short, fqdn := cloudHostnames(m.cfg.Hostname)
	all := map[string]string{"instance_id": id, "hostname": short, "fqdn": fqdn}
	m.mu.Lock()
	for k, v := range m.pubKeys {
		all[k] = v
	}
	m.mu.Unlock()

	form := url.Values{}
	var body strings.Builder
	for _, k := range ph.post {
		if form.Has(k) {
			continue
		}
		v, ok := all[k]
		if !ok {
			v = "N/A"
		}
		form.Set(k, v)
		if body.Len() > 0 {
			body.WriteByte('&')
		}
		body.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(v))
	}
	target := strings.NewReplacer("${INSTANCE_ID}", id, "$INSTANCE_ID", id).Replace(ph.url)
	m.mu.Lock()
	m.state.CallbackURL = target
	m.state.CallbackForm = form
	m.mu.Unlock()

	for try := 1; try <= ph.tries; try++ {
		status, err := m.postOnce(target, body.String())
		m.mu.Lock()
		m.state.CallbackAttempts = try
		m.state.CallbackSentAt = time.Now()
		m.state.CallbackStatus = status
		if err == nil {
			m.state.CallbackError = ""
			m.state.CallbackDelivered = true
		} else {
			m.state.CallbackError = err.Error()
		}
		m.mu.Unlock()
		if err == nil {
			m.log.Info("vps: phone_home delivered", "url", redactURL(target), "try", try, "status", status)
			return
		}
		m.log.Info("vps: phone_home try failed", "url", redactURL(target), "try", try, "err", err)
		if try < ph.tries && !sleepCtx(m.ctx, m.cfg.CallbackRetryInterval) {
			return
		}
	}
	m.mu.Lock()
	m.warnf("phone_home: failed to post to %s in %d tries", redactURL(target), ph.tries)
	m.mu.Unlock()
}

func (m *Machine) postOnce(target, body string) (int, error) {
	req, err := http.NewRequestWithContext(m.ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("phone_home request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", userAgent)
	resp, err := m.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("phone_home post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("phone_home post: %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// cloudHostnames derives cloud-init's hostname and fqdn from the metadata local-hostname:
// without a dot, both are the name (cloud-init does not append its "localdomain" default).
func cloudHostnames(local string) (string, string) {
	short, _, _ := strings.Cut(local, ".")
	return short, local
}

// redactURL drops the path, which carries the callback token, from log lines.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
