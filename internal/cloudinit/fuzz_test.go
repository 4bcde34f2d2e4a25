package cloudinit

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzBuild feeds arbitrary field values to Build. Whatever comes in, Build either refuses it or
// returns valid YAML within the size limit whose hostname, users and keys are exactly the input —
// so no input can smuggle extra structure into the document.
func FuzzBuild(f *testing.F) {
	k := getKeys(f)
	valid := validConfig(f)
	seeds := []struct{ host, login, svc, key, url, pkg, cmd string }{
		{valid.Hostname, "", "", k.rsa.PublicKey, valid.CallbackURL, "curl", ""},
		{"a", "ops", "svc", k.ed.PublicKey, "http://127.0.0.1:1/c", "python3", "/bin/x -v"},
		{"x\nruncmd: [reboot]", "ops", "svc", k.ed.PublicKey, valid.CallbackURL, "curl", ""},
		{"true", "_", "a-b", k.ed.PublicKey + " c'mt", "https://h/c?q=1", "g++", "/a b"},
		{"0x1f", "yes", "no", "ssh-ed25519 AAAA", "https://h/$x", "0", "/x %h"},
		{"null", "ops", "ops", k.ed.PublicKey + "\n" + k.rsa.PublicKey, "https://h/c#f", "a\nb", "/x\ny"},
		{"123", "on", "off", "", "javascript:alert(1)", "", "/x;y"},
		{"rachel-sub-1.example", "rachel-ops", "rachel", "  " + k.ed.PublicKey + "  \n", "https://[::1]:8443/callback/t", "libc6", "/usr/bin/env FOO=1"},
	}
	for _, s := range seeds {
		f.Add(s.host, s.login, s.svc, s.key, s.url, s.pkg, s.cmd)
	}
	f.Fuzz(func(t *testing.T, host, login, svc, key, url, pkg, cmd string) {
		cfg := Config{
			Hostname:         host,
			LoginUser:        login,
			ServiceUser:      svc,
			AuthorizedKeys:   []string{key},
			HostKeyPrivate:   k.host.PrivateOpenSSH,
			HostKeyPublic:    k.host.Public,
			CallbackURL:      url,
			Packages:         []string{pkg},
			AssistantCommand: cmd,
			// The same untrusted URL is the artifact's: it must stay one argv word.
			AssistantArtifactURL:    url,
			AssistantArtifactSHA256: strings.Repeat("0f", 32),
		}
		out, err := Build(cfg)
		if err != nil {
			if out != nil {
				t.Fatalf("error with output: %v", err)
			}
			return
		}
		if len(out) > MaxUserDataSize {
			t.Fatalf("user data is %d bytes", len(out))
		}
		if !strings.HasPrefix(string(out), Header) {
			t.Fatal("no #cloud-config header")
		}
		var top map[string]any
		if err := yaml.Unmarshal(out, &top); err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, out)
		}
		if len(top) != 15 {
			t.Fatalf("document has %d top-level keys, want 15:\n%s", len(top), out)
		}
		doc, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		if login == "" {
			login = DefaultLoginUser
		}
		if svc == "" {
			svc = DefaultServiceUser
		}
		if doc.Hostname != host {
			t.Fatalf("hostname %q, input %q", doc.Hostname, host)
		}
		if len(doc.Users) != 2 || doc.Users[0].Name != login || doc.Users[1].Name != svc {
			t.Fatalf("users %+v, input %q %q", doc.Users, login, svc)
		}
		if got := doc.Users[0].SSHAuthorizedKeys; len(got) != 1 || got[0] != strings.TrimSpace(key) {
			t.Fatalf("authorized keys %q, input %q", got, key)
		}
		if doc.Users[1].Sudo != "" || len(doc.Users[1].SSHAuthorizedKeys) != 0 {
			t.Fatal("service user got sudo or keys")
		}
		if doc.PhoneHome.URL != url {
			t.Fatalf("phone_home url %q, input %q", doc.PhoneHome.URL, url)
		}
		if len(doc.Packages) != 1 || doc.Packages[0] != pkg {
			t.Fatalf("packages %q, input %q", doc.Packages, pkg)
		}
		if len(doc.RunCmd) != 9 || len(doc.WriteFiles) != 3 {
			t.Fatalf("runcmd/write_files changed shape:\n%s", out)
		}
		if curl := doc.RunCmd[3].Argv; len(curl) == 0 || curl[0] != "curl" || curl[len(curl)-1] != url {
			t.Fatalf("download %q, input %q", curl, url)
		}
		if strings.Count(doc.Users[0].Sudo, ", ") != 5 {
			t.Fatalf("sudo rule does not list exactly six commands: %q", doc.Users[0].Sudo)
		}
	})
}
