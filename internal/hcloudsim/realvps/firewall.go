package realvps

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// nftTable is the table holding a VPS's Hetzner firewall, inside its network namespace.
const nftTable = "hcloud_firewall"

// FirewallScript renders the rules of the firewalls applied to a server as one nft transaction
// that replaces the previous state atomically. Semantics are Hetzner's (cloud.spec.json, tag
// "Firewalls"): with at least one firewall applied, inbound traffic is dropped unless an `in`
// rule allows it ("The default for `in` is `DROP`"), outbound is accepted unless there is an
// `out` rule ("The default for `out` is `ACCEPT`"); firewalls are stateful, so answers to
// allowed connections pass. applied=false (no firewall) lets everything through, as on Hetzner.
func FirewallScript(rules []schema.FirewallRule, applied bool) (string, error) {
	var b strings.Builder
	// Creating the table first makes the delete valid whether or not it existed.
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\n", nftTable, nftTable)
	if !applied {
		return b.String(), nil
	}
	var in, out []string
	hasOut := false
	for i, r := range rules {
		lines, err := ruleLines(r)
		if err != nil {
			return "", fmt.Errorf("firewall rule %d: %w", i, err)
		}
		switch r.Direction {
		case "in":
			in = append(in, lines...)
		case "out":
			hasOut = true
			out = append(out, lines...)
		default:
			return "", fmt.Errorf("firewall rule %d: direction %q", i, r.Direction)
		}
	}
	fmt.Fprintf(&b, "table inet %s {\n", nftTable)
	b.WriteString("  chain in {\n    type filter hook input priority filter; policy drop;\n")
	b.WriteString("    ct state established,related accept\n    iifname \"lo\" accept\n")
	for _, l := range in {
		b.WriteString("    " + l + "\n")
	}
	b.WriteString("  }\n")
	if hasOut {
		b.WriteString("  chain out {\n    type filter hook output priority filter; policy drop;\n")
		b.WriteString("    ct state established,related accept\n    oifname \"lo\" accept\n")
		for _, l := range out {
			b.WriteString("    " + l + "\n")
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String(), nil
}

// ruleLines turns one Hetzner rule into nft accept rules, one per address family present.
func ruleLines(r schema.FirewallRule) ([]string, error) {
	addrs := r.SourceIPs
	match := "saddr"
	if r.Direction == "out" {
		addrs, match = r.DestinationIPs, "daddr"
	}
	var v4, v6 []string
	for _, a := range addrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("address %q is not a CIDR block", a)
		}
		if p.Addr().Is4() {
			v4 = append(v4, p.Masked().String())
		} else {
			v6 = append(v6, p.Masked().String())
		}
	}
	var proto4, proto6 string
	switch r.Protocol {
	case "tcp", "udp":
		port := "any"
		if r.Port != nil {
			port = strings.TrimSpace(*r.Port)
		}
		if port == "any" || port == "" {
			proto4 = "meta l4proto " + r.Protocol
		} else {
			if err := checkPort(port); err != nil {
				return nil, err
			}
			proto4 = r.Protocol + " dport " + port
		}
		proto6 = proto4
	case "icmp":
		proto4, proto6 = "meta l4proto icmp", "meta l4proto ipv6-icmp"
	case "esp", "gre":
		proto4, proto6 = "meta l4proto "+r.Protocol, "meta l4proto "+r.Protocol
	default:
		return nil, fmt.Errorf("protocol %q", r.Protocol)
	}
	var out []string
	if len(v4) > 0 {
		out = append(out, fmt.Sprintf("ip %s { %s } %s accept", match, strings.Join(v4, ", "), proto4))
	}
	if len(v6) > 0 {
		out = append(out, fmt.Sprintf("ip6 %s { %s } %s accept", match, strings.Join(v6, ", "), proto6))
	}
	return out, nil
}

// checkPort accepts "N" or "N-M" with 1 <= N <= M <= 65535, Hetzner's port syntax.
func checkPort(p string) error {
	lo, hi, isRange := strings.Cut(p, "-")
	var a, b int
	if _, err := fmt.Sscanf(lo, "%d", &a); err != nil || fmt.Sprint(a) != lo {
		return fmt.Errorf("port %q", p)
	}
	b = a
	if isRange {
		if _, err := fmt.Sscanf(hi, "%d", &b); err != nil || fmt.Sprint(b) != hi {
			return fmt.Errorf("port %q", p)
		}
	}
	if a < 1 || b > 65535 || a > b {
		return fmt.Errorf("port %q out of range", p)
	}
	return nil
}
