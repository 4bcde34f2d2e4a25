package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/config"
)

// The README's configuration table lists every variable the service reads.
func TestREADMEListsEveryVariable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, v := range config.Vars {
		require.True(t, strings.Contains(string(b), "| `"+v.Name+"` |"), "README.md's configuration table lacks %s", v.Name)
	}
}
