package hcloudsim

import (
	"context"
	"net"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/stretchr/testify/require"
)

// TestFirewallSetRules: POST /firewalls/{id}/actions/set_rules replaces every rule of the firewall
// (the servers behind it follow at once) and answers 201 with set_firewall_rules and one
// apply_firewall per server, as the spec and hcloud-go's FirewallClient.SetRules have it; bad
// rules are invalid_input and change nothing; an unknown firewall is not_found.
func TestFirewallSetRules(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	port := "22"
	_, all, _ := net.ParseCIDR("0.0.0.0/0")
	fw, _, err := b.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "ssh-only", Rules: []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP, Port: &port, SourceIPs: []net.IPNet{*all}}}})
	require.NoError(t, err)
	key := b.createKey(t, "k")
	srv := b.createServer(t, hcloud.ServerCreateOpts{Name: "s1", ServerType: &hcloud.ServerType{Name: "cx23"},
		Image: &hcloud.Image{Name: "debian-12"}, SSHKeys: []*hcloud.SSHKey{key},
		Firewalls: []*hcloud.ServerCreateFirewall{{Firewall: hcloud.Firewall{ID: fw.Firewall.ID}}}})

	newPort := "2222"
	_, narrow, _ := net.ParseCIDR("192.0.2.0/24")
	actions, _, err := b.client.Firewall.SetRules(ctx, fw.Firewall, hcloud.FirewallSetRulesOpts{Rules: []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP, Port: &newPort, SourceIPs: []net.IPNet{*narrow}}}})
	require.NoError(t, err)
	require.Len(t, actions, 2)
	require.Equal(t, "set_firewall_rules", actions[0].Command)
	require.Equal(t, "apply_firewall", actions[1].Command)
	require.Equal(t, hcloud.ActionStatusSuccess, actions[1].Status)
	var onServer bool
	for _, r := range actions[1].Resources {
		onServer = onServer || (r.Type == hcloud.ActionResourceTypeServer && r.ID == srv.Server.ID)
	}
	require.True(t, onServer, "apply_firewall names the server")

	got, _, err := b.client.Firewall.GetByID(ctx, fw.Firewall.ID)
	require.NoError(t, err)
	require.Len(t, got.Rules, 1)
	require.Equal(t, "2222", *got.Rules[0].Port)
	require.Equal(t, "192.0.2.0/24", got.Rules[0].SourceIPs[0].String())

	// Bad rules: invalid_input, nothing changed.
	_, _, err = b.client.Firewall.SetRules(ctx, fw.Firewall, hcloud.FirewallSetRulesOpts{Rules: []hcloud.FirewallRule{{
		Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP}}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeInvalidInput), "%v", err)
	got, _, err = b.client.Firewall.GetByID(ctx, fw.Firewall.ID)
	require.NoError(t, err)
	require.Equal(t, "2222", *got.Rules[0].Port)

	// No rules at all removes them all.
	_, _, err = b.client.Firewall.SetRules(ctx, fw.Firewall, hcloud.FirewallSetRulesOpts{Rules: []hcloud.FirewallRule{}})
	require.NoError(t, err)
	got, _, err = b.client.Firewall.GetByID(ctx, fw.Firewall.ID)
	require.NoError(t, err)
	require.Empty(t, got.Rules)

	_, _, err = b.client.Firewall.SetRules(ctx, &hcloud.Firewall{ID: 999}, hcloud.FirewallSetRulesOpts{Rules: []hcloud.FirewallRule{}})
	require.True(t, hcloud.IsError(err, hcloud.ErrorCodeNotFound), "%v", err)
}
