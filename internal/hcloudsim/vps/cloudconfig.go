package vps

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

// cloudConfig is the part of cloud-config the simulated machine understands. Parsing is strict
// about shapes (a wrong type is a boot error, which surfaces builder bugs early) and lenient
// about keys it does not simulate (recorded as warnings, as cloud-init's schema check would).
type cloudConfig struct {
	hostname        string
	fqdn            string
	users           []userSpec
	groups          []string
	hostKeys        []hostKeySeed
	sshKeysGiven    bool // cc_ssh generates keys only when ssh_keys is absent
	deleteKeys      bool
	genKeyTypes     []string
	disableRoot     bool
	passwordAuth    bool
	passwordAuthSet bool // ssh_pwauth given (and not "unchanged")
	writeFiles      []writeFile
	packages        []string
	bootCmd         []shellCmd
	runCmd          []shellCmd
	phoneHome       *phoneHome
	unknownKeys     []string
	defaultUserSet  bool
}

type userSpec struct {
	name         string
	keys         []string
	sudo         []string
	groups       []string
	primaryGroup string
	shell        string
	home         string
	lockPasswd   bool
	system       bool
	noCreateHome bool
}

type hostKeySeed struct {
	keyType    string // rsa, ecdsa, ed25519
	signer     ssh.Signer
	publicLine string // the .pub file's content as cloud-init writes it
	private    string // the private key file's content, verbatim
}

type writeFile struct {
	path     string
	content  []byte
	perm     fs.FileMode
	owner    string
	group    string
	appends  bool
	deferred bool
}

// shellCmd is one runcmd/bootcmd entry: either a shell string or an argv list.
type shellCmd struct {
	line string
	argv []string
}

type phoneHome struct {
	url   string
	post  []string
	tries int
}

// postListAll is cloud-init's POST_LIST_ALL, the fields sent for `post: all`.
var postListAll = []string{"pub_key_rsa", "pub_key_ecdsa", "pub_key_ed25519", "instance_id", "hostname", "fqdn"}

// knownButIgnored are valid cloud-config keys whose effect the simulator does not model.
var knownButIgnored = map[string]bool{
	"package_update": true, "package_upgrade": true, "package_reboot_if_required": true,
	"apt": true, "timezone": true, "locale": true, "ntp": true, "final_message": true,
	"manage_etc_hosts": true, "preserve_hostname": true, "prefer_fqdn_over_hostname": true,
	"chpasswd": true, "ssh_authorized_keys": true, "ssh_quiet_keygen": true,
	"ssh_publish_hostkeys": true, "allow_public_ssh_keys": true, "no_ssh_fingerprints": true,
	"create_hostname_file": true, "power_state": true, "output": true, "growpart": true,
	"resize_rootfs": true, "mounts": true, "swap": true, "ssh_fp_console_blacklist": true,
	"ssh_key_console_blacklist": true, "authkey_hash": true, "merge_how": true,
}

// parseUserData turns Hetzner user data into a cloudConfig, or explains why cloud-init would
// not accept it.
func parseUserData(data string) (*cloudConfig, error) {
	raw := []byte(data)
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("user data: gzip: %w", err)
		}
		raw, err = io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("user data: gzip: %w", err)
		}
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	if strings.TrimRight(first, " \t\r") != "#cloud-config" {
		if strings.TrimSpace(string(raw)) == "" {
			return nil, errors.New("user data is empty")
		}
		return nil, fmt.Errorf("user data does not start with #cloud-config (first line %q)", truncate(first, 40))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("cloud-config is not valid YAML: %w", err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, errors.New("cloud-config is empty")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("cloud-config: top level must be a mapping, got %s", kindName(root))
	}
	cc := &cloudConfig{deleteKeys: true, disableRoot: true}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		if err := cc.parseKey(key, val); err != nil {
			return nil, fmt.Errorf("cloud-config %s: %w", key, err)
		}
	}
	return cc, nil
}

func (cc *cloudConfig) parseKey(key string, val *yaml.Node) error {
	var err error
	switch key {
	case "hostname":
		cc.hostname, err = scalarString(val)
	case "fqdn":
		cc.fqdn, err = scalarString(val)
	case "users":
		err = cc.parseUsers(val)
	case "groups":
		cc.groups, err = parseGroups(val)
	case "ssh_keys":
		cc.sshKeysGiven = !isNull(val)
		err = cc.parseSSHKeys(val)
	case "ssh_deletekeys":
		cc.deleteKeys, err = scalarBool(val)
	case "ssh_genkeytypes":
		cc.genKeyTypes, err = stringList(val)
		if err == nil && cc.genKeyTypes == nil {
			cc.genKeyTypes = []string{}
		}
	case "disable_root":
		cc.disableRoot, err = scalarBool(val)
	case "ssh_pwauth":
		if val.Tag == "!!str" && val.Value == "unchanged" {
			return nil
		}
		cc.passwordAuth, err = scalarBool(val)
		cc.passwordAuthSet = err == nil
	case "write_files":
		err = cc.parseWriteFiles(val)
	case "packages":
		err = cc.parsePackages(val)
	case "bootcmd":
		cc.bootCmd, err = parseCommands(val)
	case "runcmd":
		cc.runCmd, err = parseCommands(val)
	case "phone_home":
		cc.phoneHome, err = parsePhoneHome(val)
	default:
		if !knownButIgnored[key] {
			cc.unknownKeys = append(cc.unknownKeys, key)
		}
	}
	return err
}

func (cc *cloudConfig) parseUsers(val *yaml.Node) error {
	if isNull(val) {
		return nil
	}
	if val.Kind == yaml.ScalarNode {
		for name := range strings.SplitSeq(val.Value, ",") {
			cc.addSimpleUser(strings.TrimSpace(name))
		}
		return nil
	}
	if val.Kind != yaml.SequenceNode {
		return fmt.Errorf("want a list, got %s", kindName(val))
	}
	for i, item := range val.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			cc.addSimpleUser(item.Value)
		case yaml.MappingNode:
			u, err := parseUser(item)
			if err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
			cc.users = append(cc.users, u)
		default:
			return fmt.Errorf("[%d]: want a name or a mapping, got %s", i, kindName(item))
		}
	}
	return nil
}

func (cc *cloudConfig) addSimpleUser(name string) {
	switch name {
	case "":
	case "default":
		cc.defaultUserSet = true
	default:
		// As parseUser's defaults: useradd -m with Debian's /bin/sh and /home/NAME.
		cc.users = append(cc.users, userSpec{name: name, lockPasswd: true, shell: "/bin/sh", home: "/home/" + name})
	}
}

func parseUser(n *yaml.Node) (userSpec, error) {
	u := userSpec{lockPasswd: true}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		var err error
		switch key {
		case "name":
			u.name, err = scalarString(val)
		case "ssh_authorized_keys":
			u.keys, err = stringList(val)
		case "sudo":
			u.sudo, err = parseSudo(val)
		case "groups":
			u.groups, err = parseGroupNames(val)
		case "primary_group":
			u.primaryGroup, err = scalarString(val)
		case "shell":
			u.shell, err = scalarString(val)
		case "homedir":
			u.home, err = scalarString(val)
		case "lock_passwd":
			u.lockPasswd, err = scalarBool(val)
		case "system":
			u.system, err = scalarBool(val)
		case "no_create_home":
			u.noCreateHome, err = scalarBool(val)
		}
		if err != nil {
			return u, fmt.Errorf("%s: %w", key, err)
		}
	}
	if u.name == "" {
		return u, errors.New("user without a name")
	}
	if u.shell == "" {
		u.shell = "/bin/sh"
	}
	if u.home == "" {
		u.home = "/home/" + u.name
	}
	return u, nil
}

// parseSudo accepts what cloud-init accepts: one rule string, a list of rule strings, or
// false/null for none.
func parseSudo(val *yaml.Node) ([]string, error) {
	if isNull(val) {
		return nil, nil
	}
	if val.Kind == yaml.ScalarNode && val.Tag == "!!bool" {
		b, err := scalarBool(val)
		if err != nil {
			return nil, err
		}
		if b {
			return nil, errors.New("true is not a sudo rule (use a rule string such as \"ALL=(ALL) NOPASSWD:ALL\")")
		}
		return nil, nil
	}
	return stringList(val)
}

func parseGroupNames(val *yaml.Node) ([]string, error) {
	if isNull(val) {
		return nil, nil
	}
	if val.Kind == yaml.ScalarNode {
		var out []string
		for g := range strings.SplitSeq(val.Value, ",") {
			if g = strings.TrimSpace(g); g != "" {
				out = append(out, g)
			}
		}
		return out, nil
	}
	return stringList(val)
}

// parseGroups reads top-level `groups`: names, or mappings of a group to its members.
func parseGroups(val *yaml.Node) ([]string, error) {
	if isNull(val) {
		return nil, nil
	}
	if val.Kind != yaml.SequenceNode {
		return parseGroupNames(val)
	}
	var out []string
	for i, item := range val.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			out = append(out, item.Value)
		case yaml.MappingNode:
			for j := 0; j < len(item.Content); j += 2 {
				out = append(out, item.Content[j].Value)
			}
		default:
			return nil, fmt.Errorf("[%d]: want a name or a mapping, got %s", i, kindName(item))
		}
	}
	return out, nil
}

func (cc *cloudConfig) parseSSHKeys(val *yaml.Node) error {
	if isNull(val) {
		return nil
	}
	if val.Kind != yaml.MappingNode {
		return fmt.Errorf("want a mapping, got %s", kindName(val))
	}
	vals := map[string]string{}
	for i := 0; i+1 < len(val.Content); i += 2 {
		s, err := scalarString(val.Content[i+1])
		if err != nil {
			return fmt.Errorf("%s: %w", val.Content[i].Value, err)
		}
		vals[val.Content[i].Value] = s
	}
	for _, kt := range []string{"ed25519", "ecdsa", "rsa"} {
		priv, hasPriv := vals[kt+"_private"]
		pub, hasPub := vals[kt+"_public"]
		if !hasPriv && !hasPub {
			continue
		}
		if !hasPriv {
			return fmt.Errorf("%s_public given without %s_private: sshd would have no %s host key", kt, kt, kt)
		}
		seed, err := parseHostKey(kt, priv, pub, hasPub)
		if err != nil {
			return err
		}
		cc.hostKeys = append(cc.hostKeys, seed)
	}
	return nil
}

// wantKeyType maps a cloud-config key type to the SSH public key type it must hold.
var wantKeyType = map[string]string{
	"ed25519": ssh.KeyAlgoED25519,
	"rsa":     ssh.KeyAlgoRSA,
	"ecdsa":   "ecdsa-sha2-",
}

func parseHostKey(kt, priv, pub string, hasPub bool) (hostKeySeed, error) {
	signer, err := ssh.ParsePrivateKey([]byte(priv))
	if err != nil {
		return hostKeySeed{}, fmt.Errorf("%s_private does not parse: %w", kt, err)
	}
	if !strings.HasPrefix(signer.PublicKey().Type(), wantKeyType[kt]) {
		return hostKeySeed{}, fmt.Errorf("%s_private holds a %s key", kt, signer.PublicKey().Type())
	}
	seed := hostKeySeed{keyType: kt, signer: signer, private: priv}
	if !hasPub {
		// cloud-init derives the missing public half with ssh-keygen -y.
		seed.publicLine = string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
		return seed, nil
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		return hostKeySeed{}, fmt.Errorf("%s_public does not parse: %w", kt, err)
	}
	if !bytes.Equal(pk.Marshal(), signer.PublicKey().Marshal()) {
		return hostKeySeed{}, fmt.Errorf("%s_public does not belong to %s_private", kt, kt)
	}
	seed.publicLine = pub
	return seed, nil
}

func (cc *cloudConfig) parseWriteFiles(val *yaml.Node) error {
	if isNull(val) {
		return nil
	}
	if val.Kind != yaml.SequenceNode {
		return fmt.Errorf("want a list, got %s", kindName(val))
	}
	for i, item := range val.Content {
		wf, err := parseWriteFile(item)
		if err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
		cc.writeFiles = append(cc.writeFiles, wf)
	}
	return nil
}

func parseWriteFile(n *yaml.Node) (writeFile, error) {
	if n.Kind != yaml.MappingNode {
		return writeFile{}, fmt.Errorf("want a mapping, got %s", kindName(n))
	}
	wf := writeFile{perm: 0o644, owner: "root", group: "root"}
	var content, encoding string
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		var err error
		switch key {
		case "path":
			wf.path, err = scalarString(val)
		case "content":
			content, err = scalarString(val)
		case "encoding":
			encoding, err = scalarString(val)
		case "permissions":
			wf.perm, err = parsePermissions(val)
		case "owner":
			var owner string
			owner, err = scalarString(val)
			wf.owner, wf.group, _ = strings.Cut(owner, ":")
			if wf.group == "" {
				wf.group = "root"
			}
		case "append":
			wf.appends, err = scalarBool(val)
		case "defer":
			wf.deferred, err = scalarBool(val)
		case "source":
			err = errors.New("source (download) is not simulated; inline the content")
		}
		if err != nil {
			return wf, fmt.Errorf("%s: %w", key, err)
		}
	}
	if !strings.HasPrefix(wf.path, "/") {
		return wf, fmt.Errorf("path %q is not absolute", wf.path)
	}
	decoded, err := decodeContent(content, encoding)
	if err != nil {
		return wf, fmt.Errorf("%s: %w", wf.path, err)
	}
	wf.content = decoded
	return wf, nil
}

// parsePermissions follows cloud-init's decode_perms: a string is octal, an integer is taken
// as YAML resolved it (0644 is octal in YAML 1.1, as PyYAML reads it).
func parsePermissions(val *yaml.Node) (fs.FileMode, error) {
	if val.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("want a scalar, got %s", kindName(val))
	}
	var (
		n   uint64
		err error
	)
	if val.Tag == "!!int" {
		var v int64
		if err = val.Decode(&v); err == nil && v >= 0 {
			n = uint64(v)
		}
	} else {
		n, err = strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(val.Value, "0o"), "0"), 8, 32)
		if val.Value == "0" || val.Value == "0o0" {
			n, err = 0, nil
		}
	}
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("invalid permissions %q", val.Value)
	}
	return fileMode(uint32(n)), nil
}

func decodeContent(content, encoding string) ([]byte, error) {
	switch strings.ToLower(encoding) {
	case "", "text/plain":
		return []byte(content), nil
	case "b64", "base64":
		return decodeB64(content)
	case "gz", "gzip":
		return gunzip([]byte(content))
	case "gz+b64", "gz+base64", "gzip+b64", "gzip+base64":
		b, err := decodeB64(content)
		if err != nil {
			return nil, err
		}
		return gunzip(b)
	default:
		return nil, fmt.Errorf("unknown encoding %q", encoding)
	}
}

func decodeB64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("content is not valid base64: %w", err)
	}
	return b, nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("content is not gzip: %w", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("content is not gzip: %w", err)
	}
	return out, nil
}

func (cc *cloudConfig) parsePackages(val *yaml.Node) error {
	if isNull(val) {
		return nil
	}
	if val.Kind != yaml.SequenceNode {
		return fmt.Errorf("want a list, got %s", kindName(val))
	}
	for i, item := range val.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			cc.packages = append(cc.packages, item.Value)
		case yaml.SequenceNode: // [name, version]
			parts, err := stringList(item)
			if err != nil || len(parts) == 0 {
				return fmt.Errorf("[%d]: want [name, version]", i)
			}
			cc.packages = append(cc.packages, strings.Join(parts, "="))
		default:
			return fmt.Errorf("[%d]: want a package name, got %s", i, kindName(item))
		}
	}
	return nil
}

func parseCommands(val *yaml.Node) ([]shellCmd, error) {
	if isNull(val) {
		return nil, nil
	}
	if val.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("want a list, got %s", kindName(val))
	}
	var out []shellCmd
	for i, item := range val.Content {
		switch item.Kind {
		case yaml.ScalarNode:
			out = append(out, shellCmd{line: item.Value})
		case yaml.SequenceNode:
			argv, err := stringList(item)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out = append(out, shellCmd{argv: argv, line: quoteArgs(argv)})
		default:
			return nil, fmt.Errorf("[%d]: want a string or a list, got %s", i, kindName(item))
		}
	}
	return out, nil
}

func parsePhoneHome(val *yaml.Node) (*phoneHome, error) {
	if isNull(val) {
		return nil, nil
	}
	if val.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("want a mapping, got %s", kindName(val))
	}
	ph := &phoneHome{post: postListAll, tries: 10}
	for i := 0; i+1 < len(val.Content); i += 2 {
		key, v := val.Content[i].Value, val.Content[i+1]
		var err error
		switch key {
		case "url":
			ph.url, err = scalarString(v)
		case "post":
			if v.Kind == yaml.ScalarNode && v.Value == "all" {
				ph.post = postListAll
				continue
			}
			if v.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("post: want \"all\" or a list, got %s", kindName(v))
			}
			ph.post, err = stringList(v)
		case "tries":
			// cloud-init falls back to 10 when tries is not an integer.
			if n, convErr := strconv.Atoi(v.Value); convErr == nil {
				ph.tries = n
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if ph.tries < 1 {
		ph.tries = 1
	}
	return ph, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func scalarString(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want a string, got %s", kindName(n))
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func scalarBool(n *yaml.Node) (bool, error) {
	if n.Kind != yaml.ScalarNode {
		return false, fmt.Errorf("want a boolean, got %s", kindName(n))
	}
	// PyYAML (YAML 1.1) also reads yes/no/on/off as booleans.
	switch strings.ToLower(n.Value) {
	case "true", "yes", "on", "y":
		return true, nil
	case "false", "no", "off", "n":
		return false, nil
	}
	return false, fmt.Errorf("want a boolean, got %q", n.Value)
}

func stringList(n *yaml.Node) ([]string, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode {
		return []string{n.Value}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("want a list of strings, got %s", kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		if item.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("[%d]: want a string, got %s", i, kindName(item))
		}
		out = append(out, item.Value)
	}
	return out, nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the scalar %q", truncate(n.Value, 30))
	case yaml.AliasNode:
		return "an alias"
	default:
		return "nothing"
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
