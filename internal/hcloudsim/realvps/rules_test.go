package realvps

import (
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	"github.com/stretchr/testify/require"
)

// TestFirewallScriptWhole: the complete nft transaction for Hetzner's rules, as applied in the
// VPS's namespace: stateful, loopback always allowed, one accept per address family.
func TestFirewallScriptWhole(t *testing.T) {
	t.Parallel()
	anyPort, dns := "any", "53"
	s, err := FirewallScript([]schema.FirewallRule{
		{Direction: "in", Protocol: "icmp", SourceIPs: []string{"0.0.0.0/0", "::/0"}},
		{Direction: "in", Protocol: "udp", Port: &anyPort, SourceIPs: []string{"203.0.113.9/24"}},
		{Direction: "in", Protocol: "gre", SourceIPs: []string{"2001:db8::1/64"}},
		{Direction: "out", Protocol: "udp", Port: &dns, DestinationIPs: []string{" 9.9.9.9/32 "}},
	}, true)
	require.NoError(t, err)
	require.Equal(t, `table inet hcloud_firewall
delete table inet hcloud_firewall
table inet hcloud_firewall {
  chain in {
    type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    ip saddr { 0.0.0.0/0 } meta l4proto icmp accept
    ip6 saddr { ::/0 } meta l4proto ipv6-icmp accept
    ip saddr { 203.0.113.0/24 } meta l4proto udp accept
    ip6 saddr { 2001:db8::/64 } meta l4proto gre accept
  }
  chain out {
    type filter hook output priority filter; policy drop;
    ct state established,related accept
    oifname "lo" accept
    ip daddr { 9.9.9.9/32 } udp dport 53 accept
  }
}
`, s)

	// Rules Hetzner would not accept are refused, naming the rule.
	p22 := "22"
	for _, tc := range []struct {
		rule schema.FirewallRule
		want string
	}{
		{schema.FirewallRule{Direction: "sideways", Protocol: "tcp", Port: &p22, SourceIPs: []string{"0.0.0.0/0"}}, `firewall rule 0: direction "sideways"`},
		{schema.FirewallRule{Direction: "in", Protocol: "sctp", SourceIPs: []string{"0.0.0.0/0"}}, `firewall rule 0: protocol "sctp"`},
		{schema.FirewallRule{Direction: "in", Protocol: "tcp", Port: &p22, SourceIPs: []string{"10.0.0.1"}}, `address "10.0.0.1" is not a CIDR block`},
		{schema.FirewallRule{Direction: "out", Protocol: "tcp", Port: &p22, DestinationIPs: []string{"::/129"}}, "is not a CIDR block"},
	} {
		_, err := FirewallScript([]schema.FirewallRule{tc.rule}, true)
		require.ErrorContains(t, err, tc.want)
	}
}

// TestCheckPortAsHetzner: "N" or "N-M", 1 ≤ N ≤ M ≤ 65535, digits only.
func TestCheckPortAsHetzner(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"1", "22", "65535", "80-85", "1-65535", "443-443"} {
		require.NoError(t, checkPort(ok), ok)
	}
	for _, bad := range []string{"0", "65536", "85-80", "0-10", "abc", "22a", "+22", "022", "22-", "-22", "1-2-3", " 22"} {
		require.Error(t, checkPort(bad), bad)
	}
}

func TestSlotNamingAndMounts(t *testing.T) {
	t.Parallel()
	require.Equal(t, "10.213.0.5", slotIP(1, 1).String())
	require.Equal(t, "10.213.0.6", slotIP(1, 2).String())
	require.Equal(t, "10.213.4.1", slotIP(256, 1).String(), "slots past 63 carry into the third octet")
	for name, want := range map[string]int{Prefix + "0": 0, Prefix + "17": 17} {
		got, ok := slotOfName(name)
		require.True(t, ok, name)
		require.Equal(t, want, got)
	}
	for _, name := range []string{"rvps", Prefix, Prefix + "x", "other-3"} {
		_, ok := slotOfName(name)
		require.False(t, ok, name)
	}
	require.Equal(t, StateDir+"/3.lock", lockPath(3))
	// /proc/self/mountinfo escapes space, tab, newline and backslash in octal.
	require.Equal(t, "/run/a b\tc\\d", unescapeMount(`/run/a\040b\011c\134d`))
	require.Equal(t, "/plain", unescapeMount("/plain"))
	require.Equal(t, `/odd\9x`, unescapeMount(`/odd\9x`), "not an octal escape")
}
