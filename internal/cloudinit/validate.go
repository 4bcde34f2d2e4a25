package cloudinit

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/rachelcloud/admin/internal/sshkey"
)

var (
	// userNameRe is the portable Linux user name, short enough for useradd.
	userNameRe = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	// hostLabelRe is one RFC 1123 label.
	hostLabelRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	// packageRe is a Debian package name (Debian Policy 5.6.1).
	packageRe = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{1,99}$`)
	// sha256Re is a SHA-256 digest in hex.
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// commandRe allows an absolute program path and plain arguments: no quotes, no "%" (systemd
	// specifiers), no "$" (variable expansion), no "\" (line continuation), no ";".
	commandRe = regexp.MustCompile(`^/[A-Za-z0-9/._+-]+( +[A-Za-z0-9/._=:,@+-]+)*$`)
)

// maxPackages bounds the package list (each name is also bounded by packageRe).
const maxPackages = 100

// Validate reports every invalid field of c (after defaults are applied), joined; nil if c can be
// built. Errors name the field and never include key material.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(field string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("cloud-init %s: %w", field, err))
		}
	}
	add("hostname", validateHostname(c.Hostname))
	add("login user", validateUserName(c.LoginUser))
	add("service user", validateUserName(c.ServiceUser))
	if c.LoginUser == c.ServiceUser {
		add("service user", fmt.Errorf("%q is also the login user; they must differ", c.ServiceUser))
	}
	if len(c.AuthorizedKeys) == 0 {
		add("authorized keys", errors.New("at least one public key is required"))
	}
	for i, k := range c.AuthorizedKeys {
		add(fmt.Sprintf("authorized key %d", i+1), validatePublicKey(k))
	}
	add("host key", validateHostKey(c.HostKeyPrivate, c.HostKeyPublic))
	add("callback URL", validateCallbackURL(c.CallbackURL))
	add("packages", validatePackages(c.Packages))
	add("assistant command", validateCommand(c.AssistantCommand))
	if c.SSHPort < 1 || c.SSHPort > 65535 {
		add("ssh port", fmt.Errorf("%d is not a port number (1-65535)", c.SSHPort))
	}
	add("assistant artifact", validateArtifact(c.AssistantArtifactURL, c.AssistantArtifactSHA256))
	return errors.Join(errs...)
}

func validateHostname(h string) error {
	if h == "" {
		return errors.New("is empty")
	}
	if len(h) > 253 {
		return fmt.Errorf("is %d characters, over 253", len(h))
	}
	onlyDigits := true
	for _, label := range strings.Split(h, ".") {
		if !hostLabelRe.MatchString(label) {
			return fmt.Errorf("%q is not an RFC 1123 host name: labels of 1–63 letters, digits and inner hyphens, separated by dots", h)
		}
		if strings.Trim(label, "0123456789") != "" {
			onlyDigits = false
		}
	}
	if onlyDigits {
		return fmt.Errorf("%q looks like an IP address, not a host name", h)
	}
	return nil
}

func validateUserName(n string) error {
	if !userNameRe.MatchString(n) {
		return fmt.Errorf("%q is not a valid user name: want ^[a-z_][a-z0-9_-]{0,31}$", n)
	}
	if n == "root" {
		return errors.New(`"root" is not allowed`)
	}
	return nil
}

// safeLine checks a value that will end up on one line of a system file.
func safeLine(s string) error {
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			return errors.New("contains a line break or control character")
		case r == '"' || r == '\'' || r == '\\' || r == '`':
			return errors.New("contains a quote or backslash")
		case r > 0x7e:
			return errors.New("contains a non-ASCII character")
		}
	}
	return nil
}

func validatePublicKey(k string) error {
	k = strings.TrimSpace(k)
	if k == "" {
		return errors.New("is empty")
	}
	if err := safeLine(k); err != nil {
		return err
	}
	if _, err := sshkey.ParseAuthorizedKey(k); err != nil {
		return fmt.Errorf("is not an OpenSSH public key: %w", err)
	}
	return nil
}

func validateHostKey(private, public string) error {
	if strings.TrimSpace(private) == "" || strings.TrimSpace(public) == "" {
		return errors.New("both the private and the public Ed25519 host key are required")
	}
	if !strings.HasPrefix(private, "-----BEGIN OPENSSH PRIVATE KEY-----\n") {
		return errors.New("private key is not in OpenSSH format (-----BEGIN OPENSSH PRIVATE KEY-----)")
	}
	if err := safeLine(strings.TrimSpace(public)); err != nil {
		return fmt.Errorf("public key %w", err)
	}
	// Checks the pair matches, so the key seeded is the key the provisioner pins.
	if _, err := sshkey.ParseHostKey(private, strings.TrimSpace(public)); err != nil {
		return fmt.Errorf("does not check out: %w", err)
	}
	return nil
}

func validateCallbackURL(raw string) error {
	if raw == "" {
		return errors.New("is empty")
	}
	if len(raw) > 2048 {
		return fmt.Errorf("is %d characters, over 2048", len(raw))
	}
	if err := safeLine(raw); err != nil {
		return err
	}
	if strings.ContainsAny(raw, " $<>{}|^") {
		// "$" would be expanded by cloud-init's phone_home templating.
		return errors.New("contains a space or one of $<>{}|^")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("does not parse: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("has no host")
	}
	if u.User != nil {
		return errors.New("must not carry user info")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	return nil
}

func validatePackages(pkgs []string) error {
	if len(pkgs) > maxPackages {
		return fmt.Errorf("%d packages, over %d", len(pkgs), maxPackages)
	}
	seen := make(map[string]bool, len(pkgs))
	for _, p := range pkgs {
		if !packageRe.MatchString(p) {
			return fmt.Errorf("%q is not a Debian package name", p)
		}
		if seen[p] {
			return fmt.Errorf("%q is listed twice", p)
		}
		seen[p] = true
	}
	return nil
}

func validateCommand(cmd string) error {
	if len(cmd) > 1024 {
		return fmt.Errorf("is %d characters, over 1024", len(cmd))
	}
	if !commandRe.MatchString(cmd) {
		return fmt.Errorf("%q is not an absolute program path with plain arguments (no quotes, $, %%, \\ or ;)", cmd)
	}
	return nil
}

// validateArtifact checks the download URL and its digest: both or neither.
func validateArtifact(raw, sum string) error {
	if raw == "" && sum == "" {
		return nil
	}
	if raw == "" || sum == "" {
		return errors.New("the URL and its SHA-256 go together: set both or neither")
	}
	if !sha256Re.MatchString(strings.ToLower(sum)) {
		return errors.New("SHA-256 is not 64 hexadecimal digits")
	}
	if len(raw) > 2048 {
		return fmt.Errorf("URL is %d characters, over 2048", len(raw))
	}
	if err := safeLine(raw); err != nil {
		return fmt.Errorf("URL %w", err)
	}
	if strings.ContainsAny(raw, " <>{}|^") {
		return errors.New("URL contains a space or one of <>{}|^")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("URL does not parse: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("URL scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("URL has no host")
	}
	return nil
}

// ValidateArtifact checks an assistant artifact URL and its SHA-256 (both or neither), for
// internal/config.
func ValidateArtifact(rawURL, sha256Hex string) error { return validateArtifact(rawURL, sha256Hex) }

// ValidateCommand checks an ExecStart command line, for internal/config.
func ValidateCommand(cmd string) error { return validateCommand(cmd) }

// ValidatePackages checks a package list, for internal/config.
func ValidatePackages(pkgs []string) error { return validatePackages(pkgs) }
