package provision

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rachelcloud/admin/internal/assistantfixture"
	"github.com/rachelcloud/admin/internal/cloudinit"
	"github.com/rachelcloud/admin/internal/db"
	"github.com/rachelcloud/admin/internal/hcloudsim"
	"github.com/rachelcloud/admin/internal/hcloudsim/realvps"
	"github.com/rachelcloud/admin/internal/secrets"
	"github.com/rachelcloud/admin/internal/testkit"
)

// requireGone waits until a real VPS's container has ended and its disk, mounts, namespace and
// link are removed.
func requireGone(t testing.TB, m *realvps.Machine) {
	t.Helper()
	root := m.Root()
	testkit.Eventually(t, "the container to end", func() bool {
		select {
		case <-m.Done():
			return true
		default:
			return false
		}
	})
	testkit.Eventually(t, "the layer to be removed", func() bool {
		_, err := os.Stat(root)
		return os.IsNotExist(err)
	})
	testkit.Eventually(t, "no mount, namespace or link of the VPS left", func() bool { return len(realvps.SlotLeftovers(m.Slot())) == 0 })
}

// requireAssistantRuns checks, on the VPS itself, that the secrets are in place as the contract
// says and that the assistant fixture started with them and runs.
func requireAssistantRuns(t testing.TB, m *realvps.Machine) {
	t.Helper()
	require.Equal(t, "active", strings.TrimSpace(vpsRun(t, m, "systemctl is-active "+cloudinit.UnitName+" || true")))
	require.Equal(t, "640 root:rachel\n", vpsRun(t, m, "stat -c '%a %U:%G' "+cloudinit.TelegramEnvPath))
	require.Equal(t, "600 rachel:rachel\n", vpsRun(t, m, "stat -c '%a %U:%G' "+cloudinit.CredentialsPath))
	// The fixture writes its status a moment after systemd started it (the injection's stability
	// window is scaled down in tests).
	testkit.Eventually(t, "the assistant fixture's status file", func() bool {
		return strings.Contains(vpsRun(t, m, "cat "+assistantfixture.StatusPath+" 2>/dev/null || true"), "started")
	})
	require.Empty(t, strings.TrimSpace(vpsRun(t, m, "find "+cloudinit.StagingDir+" -type f")), "nothing left staged")
}

// TestRealVPSThreeToReadyReinjectDestroy: three subscriptions provisioned at once on real
// Debian 12 VPSes reach ready with the assistant fixture running on the secrets; a symlink the
// assistant could plant in its config directory cannot be (the directory is root's), and one
// found there anyway is replaced by re-injection, never followed as root; a re-inject delivers a
// changed secret; destroy removes every server and container.
func TestRealVPSThreeToReadyReinjectDestroy(t *testing.T) {
	real := withRealVPS(t)
	t.Parallel()
	b := setup(t, real)
	ctx := context.Background()
	ids := []int64{b.newSubscription(t), b.newSubscription(t), b.newSubscription(t)}
	for _, id := range ids {
		require.NoError(t, b.svc.Provision(ctx, id, admin))
	}
	machines := make([]*realvps.Machine, len(ids))
	for i, id := range ids {
		sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
		require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "%s; events %v", deref(sub.ProvisioningError), b.events(t, id))
		machines[i] = b.realMachine(t, id)
		requireAssistantRuns(t, machines[i])
	}
	b.assertOnly(t, ids...)

	// Issue 11: the assistant (user rachel) cannot plant a link where root writes.
	m := machines[0]
	out, err := m.Exec(ctx, "runuser", "-u", cloudinit.DefaultServiceUser, "--", "ln", "-sfn", "/etc/sudoers.d", cloudinit.TelegramEnvPath)
	require.Error(t, err, "the service user may not replace entries of %s: %s", cloudinit.ConfigDir, out)
	require.Contains(t, string(out), "Permission denied")
	// A link there anyway (an older layout let the assistant own the directory) is replaced.
	sudoersBefore := vpsRun(t, m, "ls -la /etc/sudoers.d; sha256sum /etc/sudoers.d/*")
	vpsRun(t, m, "ln -sfn /etc/sudoers.d "+cloudinit.TelegramEnvPath+" && ln -sfn /etc/shadow "+cloudinit.CredentialsPath)
	require.NoError(t, b.svc.Reinject(ctx, ids[0], admin))
	testkit.Eventually(t, "the re-injection to replace the links", func() bool {
		return strings.TrimSpace(vpsRun(t, m, "stat -c %F "+cloudinit.TelegramEnvPath+" "+cloudinit.CredentialsPath)) == "regular file\nregular file"
	})
	b.waitStatus(t, ids[0], db.ProvisioningStatusReady)
	require.Equal(t, sudoersBefore, vpsRun(t, m, "ls -la /etc/sudoers.d; sha256sum /etc/sudoers.d/*"), "nothing was written into /etc/sudoers.d")
	require.Contains(t, vpsRun(t, m, "stat -c '%a %U' /etc/shadow"), "640 root", "/etc/shadow untouched")
	requireAssistantRuns(t, m)

	// Re-inject a changed secret.
	sub := b.sub(t, ids[1])
	ct, err := b.cfg.Keyring.Encrypt([]byte("777:REAL-bot"), secrets.AD{Table: "customer_secrets", Column: "telegram_bot_token", RowID: sub.CustomerID})
	require.NoError(t, err)
	_, err = db.New().CustomerSecretsUpsert(ctx, b.pool, db.CustomerSecretsUpsertParams{CustomerID: sub.CustomerID, TelegramBotToken: ct})
	require.NoError(t, err)
	require.NoError(t, b.svc.Reinject(ctx, ids[1], admin))
	testkit.Eventually(t, "the re-injected token on the VPS", func() bool {
		return strings.Contains(vpsRun(t, machines[1], "cat "+cloudinit.TelegramEnvPath), "777:REAL-bot")
	})
	b.waitStatus(t, ids[1], db.ProvisioningStatusReady)
	requireAssistantRuns(t, machines[1])

	for _, id := range ids {
		require.NoError(t, b.svc.Destroy(ctx, id, admin))
	}
	for i, id := range ids {
		b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
		requireGone(t, machines[i])
	}
	b.assertOnly(t)
}

// TestRealVPSWorkerKilledDuringInjectionOnPort2222: sshd listens on VPS_SSH_PORT=2222 on a real
// VPS (and not on 22); a worker SIGKILLed after writing the first staged secret leaves it in the
// root-only staging directory; the next worker resumes and the VPS ends ready with nothing
// staged.
func TestRealVPSWorkerKilledDuringInjectionOnPort2222(t *testing.T) {
	real := withRealVPS(t)
	t.Parallel()
	b := setup(t, real, func(o *setupOpts) {
		o.noWork = true
		o.env["VPS_SSH_PORT"] = "2222"
	})
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	cmd, lines := b.startWorkerProcess(t, "inject-wrote-temp")
	waitLine(t, lines, "HOOK inject-wrote-temp")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_, _ = cmd.Process.Wait()

	m := b.realMachine(t, id)
	listening := vpsRun(t, m, "ss -Hltn")
	require.Contains(t, listening, ":2222 ")
	require.NotContains(t, listening, ":22 ")
	require.NotEmpty(t, strings.TrimSpace(vpsRun(t, m, "find "+cloudinit.StagingDir+" -type f")), "the killed worker left a staged secret")

	b.startWorker(t)
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "%s; events %v", deref(sub.ProvisioningError), b.events(t, id))
	requireAssistantRuns(t, m)
	b.assertOnly(t, id)
}

// TestRealVPSBrokenAssistant: the assistant cannot be installed (its artifact URL answers
// nothing) or installs but crash-loops. Each ends failed with real cloud-init's or systemd's own
// words; no secret is sent to a VPS whose cloud-init failed; destroy leaves no container.
func TestRealVPSBrokenAssistant(t *testing.T) {
	real := withRealVPS(t)
	t.Parallel()
	cases := []struct {
		name  string
		env   map[string]string
		wants []string
		sent  bool
	}{
		{"fixture missing", map[string]string{
			"ASSISTANT_ARTIFACT_URL":    "http://" + realvps.GatewayIP.String() + ":9/rachel-assistant",
			"ASSISTANT_ARTIFACT_SHA256": assistantfixture.SHA256,
		}, []string{"cloud-init on the VPS ended with an error, so no secret was sent", "runcmd"}, false},
		{"crash loop", map[string]string{
			"ASSISTANT_ARTIFACT_URL": "", "ASSISTANT_ARTIFACT_SHA256": "", "ASSISTANT_COMMAND": "/usr/bin/false",
		}, []string{"The assistant does not run on the VPS", "auto-restart", "main process exited with status 1"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, real, func(o *setupOpts) {
				for k, v := range tc.env {
					o.env[k] = v
				}
			})
			ctx := context.Background()
			id := b.newSubscription(t)
			require.NoError(t, b.svc.Provision(ctx, id, admin))
			sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
			require.Equal(t, db.ProvisioningStatusFailed, statusOf(sub), "events %v", b.events(t, id))
			for _, w := range tc.wants {
				require.Contains(t, deref(sub.ProvisioningError), w, "the status page shows this cause")
			}

			m := b.realMachine(t, id)
			secretsThere := strings.TrimSpace(vpsRun(t, m, "find "+cloudinit.ConfigDir+" -type f 2>/dev/null || true"))
			if tc.sent {
				require.NotEmpty(t, secretsThere)
			} else {
				require.Empty(t, secretsThere, "no secret on a VPS whose cloud-init failed")
				require.Equal(t, "absent\n", vpsRun(t, m, "test -e "+cloudinit.DefaultAssistantCommand+" && echo present || echo absent"))
			}

			require.NoError(t, b.svc.Destroy(ctx, id, admin))
			b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
			requireGone(t, m)
			b.assertOnly(t)
		})
	}
}

// TestRealVPSNeverBoots: the init on a real VPS's disk is damaged (fault never_boot), so the
// container never starts and the server shows `off` at Hetzner. The cloud_init step finds nothing
// answering SSH, reads the server's status and fails with that cause on the status page (not at
// CALLBACK_DEADLINE); the server keeps its disk until Destroy, which leaves no container, mount,
// namespace or link.
func TestRealVPSNeverBoots(t *testing.T) {
	real := withRealVPS(t)
	t.Parallel()
	b := setup(t, real, func(o *setupOpts) { o.env["CALLBACK_DEADLINE"] = "1h" })
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), NeverBoot: true})
	}))
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	requireFailed(t, b, sub, db.ProvisioningStatusCloudInit, "is off at Hetzner: the VPS went down while it booted")
	for _, w := range []string{"is off at Hetzner", "SSH at " + sub.VpsIpAddress.String() + ":22 fails", "console"} {
		require.Contains(t, deref(sub.ProvisioningError), w, "the status page shows this cause")
	}
	info, ok := b.sim.Server(*sub.HetznerServerID)
	require.True(t, ok)
	require.Contains(t, info.MachineError, "Exec format error", "what the console showed")
	slot, ok := realvps.SlotOf(sub.VpsIpAddress.AsSlice())
	require.True(t, ok)

	require.NoError(t, b.svc.Destroy(ctx, id, admin))
	b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
	testkit.Eventually(t, "nothing of the VPS left", func() bool { return len(realvps.SlotLeftovers(slot)) == 0 })
	b.assertOnly(t)
}

// TestRealVPSLostCallbackLateSSHD: real cloud-init on a real VPS never sends its phone_home
// (lose_callback) and sshd refuses connections for a while (ssh_delay). The worker sees over SSH, once it answers, that cloud-init finished, and
// goes on to ready.
func TestRealVPSLostCallbackLateSSHD(t *testing.T) {
	real := withRealVPS(t)
	t.Parallel()
	b := setup(t, real)
	ctx := context.Background()
	id := b.newSubscription(t)
	require.NoError(t, b.sim.UpdateFaults(func(f *hcloudsim.Faults) {
		// Simulated time: 20 s of real time at the tests' TimeScale.
		f.Servers = append(f.Servers, hcloudsim.ServerFault{Server: b.name(id), LoseCallback: true, SSHDelay: hcloudsim.Duration(2000 * time.Second)})
	}))
	require.NoError(t, b.svc.Provision(ctx, id, admin))
	var m *realvps.Machine
	testkit.Eventually(t, "the VPS to boot", func() bool {
		sub := b.sub(t, id)
		if sub.HetznerServerID != nil {
			m = b.sim.RealMachine(*sub.HetznerServerID)
		}
		return m != nil
	})
	require.True(t, m.State().SSHRefused, "sshd is late")
	sub := b.waitStatus(t, id, db.ProvisioningStatusReady, db.ProvisioningStatusFailed)
	require.Equal(t, db.ProvisioningStatusReady, statusOf(sub), "%s; events %v", deref(sub.ProvisioningError), b.events(t, id))
	require.False(t, m.State().SSHRefused)
	require.Contains(t, strings.Join(b.events(t, id), "\n"), "no callback was accepted, but over SSH with the pinned host key `cloud-init status --long` reports \"done\"")
	require.NotContains(t, vpsRun(t, m, "cat /var/log/cloud-init.log"), "cc_phone_home", "real cloud-init never ran phone_home")
	requireAssistantRuns(t, m)

	require.NoError(t, b.svc.Destroy(ctx, id, admin))
	b.waitStatus(t, id, db.ProvisioningStatusDestroyed)
	requireGone(t, m)
	b.assertOnly(t)
}
