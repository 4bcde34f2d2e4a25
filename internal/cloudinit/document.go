package cloudinit

import (
	"bytes"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Header is the first line cloud-init needs to treat user data as cloud-config.
const Header = "#cloud-config\n"

// Document is the subset of cloud-config that [Build] writes, in the order cloud-init's keys are
// documented. It is exported so the Hetzner simulator (and tests) can read user data back with
// [Parse] into the same types.
type Document struct {
	Hostname         string   `yaml:"hostname"`
	PreserveHostname bool     `yaml:"preserve_hostname"`
	Locale           string   `yaml:"locale,omitempty"`
	Groups           []string `yaml:"groups,omitempty"`
	Users            []User   `yaml:"users"`

	DisableRoot    bool     `yaml:"disable_root"`
	SSHPwauth      bool     `yaml:"ssh_pwauth"`
	SSHDeleteKeys  bool     `yaml:"ssh_deletekeys"`
	SSHGenKeyTypes []string `yaml:"ssh_genkeytypes"`
	SSHKeys        SSHKeys  `yaml:"ssh_keys"`

	PackageUpdate bool     `yaml:"package_update"`
	Packages      []string `yaml:"packages,omitempty"`

	WriteFiles []WriteFile `yaml:"write_files"`
	RunCmd     []RunCmd    `yaml:"runcmd"`

	PhoneHome PhoneHome `yaml:"phone_home"`
}

// User is one entry of cloud-config's users list.
type User struct {
	Name              string   `yaml:"name"`
	Gecos             string   `yaml:"gecos,omitempty"`
	PrimaryGroup      string   `yaml:"primary_group,omitempty"`
	System            bool     `yaml:"system,omitempty"`
	Homedir           string   `yaml:"homedir,omitempty"`
	NoCreateHome      bool     `yaml:"no_create_home,omitempty"`
	Shell             string   `yaml:"shell"`
	LockPasswd        bool     `yaml:"lock_passwd"`
	Sudo              string   `yaml:"sudo,omitempty"`
	SSHAuthorizedKeys []string `yaml:"ssh_authorized_keys,omitempty"`
}

// SSHKeys seeds the host key (cloud-config ssh_keys).
type SSHKeys struct {
	Ed25519Private string `yaml:"ed25519_private"`
	Ed25519Public  string `yaml:"ed25519_public"`
}

// WriteFile is one entry of cloud-config's write_files.
type WriteFile struct {
	Path        string `yaml:"path"`
	Owner       string `yaml:"owner"`
	Permissions string `yaml:"permissions"`
	Content     string `yaml:"content"`
}

// RunCmd is one runcmd entry: an argv list (cloud-init quotes every word) or, with Shell set, one
// line written verbatim into the runcmd script.
type RunCmd struct {
	Argv  []string
	Shell string
}

// MarshalYAML writes Shell as a string, Argv as a list.
func (c RunCmd) MarshalYAML() (any, error) {
	if c.Shell != "" {
		return c.Shell, nil
	}
	return c.Argv, nil
}

// UnmarshalYAML reads either form.
func (c *RunCmd) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		c.Shell = n.Value
		return nil
	}
	return n.Decode(&c.Argv)
}

// PhoneHome is cloud-config's phone_home: a form-encoded POST of the listed fields once the
// final stage has run.
type PhoneHome struct {
	URL   string   `yaml:"url"`
	Post  []string `yaml:"post"`
	Tries int      `yaml:"tries"`
}

// Marshal renders the document as user data: the #cloud-config header and YAML.
func (d *Document) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(Header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("marshal cloud-config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal cloud-config: %w", err)
	}
	return buf.Bytes(), nil
}

// Parse reads user data written by [Build] back into a Document. Unknown keys are ignored, as
// cloud-init ignores them.
func Parse(userData []byte) (*Document, error) {
	if !bytes.HasPrefix(userData, []byte(Header)) {
		return nil, errors.New("parse user data: does not start with #cloud-config")
	}
	var d Document
	if err := yaml.Unmarshal(userData, &d); err != nil {
		return nil, fmt.Errorf("parse user data: %w", err)
	}
	return &d, nil
}

// File returns the write_files entry for path, or nil.
func (d *Document) File(path string) *WriteFile {
	for i := range d.WriteFiles {
		if d.WriteFiles[i].Path == path {
			return &d.WriteFiles[i]
		}
	}
	return nil
}

// User returns the users entry named name, or nil.
func (d *Document) User(name string) *User {
	for i := range d.Users {
		if d.Users[i].Name == name {
			return &d.Users[i]
		}
	}
	return nil
}
