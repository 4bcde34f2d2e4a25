package hcloudsim

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLabelSelector(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"env": "prod", "tier": "web", "example.com/team": "ops", "flag": ""}
	for sel, want := range map[string]bool{
		"":                            true,
		"env=prod":                    true,
		"env==prod":                   true,
		"env=dev":                     false,
		"env!=dev":                    true,
		"env!=prod":                   false,
		"missing!=x":                  true,
		"env":                         true,
		"flag":                        true,
		"missing":                     false,
		"!missing":                    true,
		"!env":                        false,
		"env in (dev,prod)":           true,
		"env in (dev, staging)":       false,
		"missing in (a)":              false,
		"env notin (dev,staging)":     true,
		"env notin (prod)":            false,
		"missing notin (a)":           true,
		"env=prod,tier=web":           true,
		"env=prod,tier in (db,cache)": false,
		"env in (prod,dev),!missing":  true,
		"example.com/team=ops":        true,
		"env=prod, tier notin (db,x)": true,
	} {
		ls, err := parseLabelSelector(sel)
		require.NoError(t, err, sel)
		require.Equal(t, want, ls.matches(labels), "selector %q", sel)
	}
	for _, bad := range []string{"env in (a", "!", ",", "env in a", "-bad-"} {
		_, err := parseLabelSelector(bad)
		require.Error(t, err, bad)
	}
}

func TestValidateLabels(t *testing.T) {
	t.Parallel()
	require.Empty(t, validateLabels(map[string]string{
		"environment": "development", "example.com/my": "label", "just-a-key": "", "a.b_c-d": "X.y_z-1",
	}))
	for _, bad := range []map[string]string{
		{"-start": "v"},
		{"end-": "v"},
		{"k": "-v"},
		{"k": "has space"},
		{strings.Repeat("a", 64): "v"},
		{"k": strings.Repeat("v", 64)},
		{"hetzner.cloud/x": "v"},
		{"Bad_Prefix/x": "v"},
		{"": "v"},
	} {
		require.NotEmpty(t, validateLabels(bad), "%v", bad)
	}
}

func TestValidHostname(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "rachel-42", "srv.example.com", "A1"} {
		require.True(t, validHostname(ok), ok)
	}
	for _, bad := range []string{"", "-a", "a-", "a_b", "a..b", "has space", strings.Repeat("a", 64)} {
		require.False(t, validHostname(bad), bad)
	}
}
