#!/bin/sh
# Rachel assistant test fixture: a real program for the unit's ExecStart that proves systemd
# started it with the injected configuration. It exits non-zero (so the unit fails and restarts)
# when anything is missing, and otherwise records what it found in its state directory and stays
# up. It never prints a secret: only the owner ID and SHA-256 digests.
set -eu
fail() { echo "rachel-assistant fixture: $*" >&2; exit 1; }
[ -n "${TELEGRAM_BOT_TOKEN:-}" ] || fail "TELEGRAM_BOT_TOKEN is not set (EnvironmentFile /etc/rachel/telegram.env)"
[ -n "${TELEGRAM_OWNER_ID:-}" ] || fail "TELEGRAM_OWNER_ID is not set (EnvironmentFile /etc/rachel/telegram.env)"
creds="${RACHEL_CLAUDE_CREDENTIALS:-}"
[ -n "$creds" ] || fail "RACHEL_CLAUDE_CREDENTIALS is not set"
[ -r "$creds" ] || fail "cannot read $creds"
grep -q '"accessToken"' "$creds" || fail "$creds holds no accessToken"
state="${STATE_DIRECTORY:-/var/lib/rachel}"
token_sum=$(printf '%s' "$TELEGRAM_BOT_TOKEN" | sha256sum | cut -d' ' -f1)
creds_sum=$(sha256sum < "$creds" | cut -d' ' -f1)
tmp="$state/.assistant-status.tmp"
{
	echo "started pid=$$ user=$(id -un)"
	echo "telegram_owner_id=$TELEGRAM_OWNER_ID"
	echo "telegram_bot_token_sha256=$token_sum"
	echo "credentials=$creds"
	echo "credentials_sha256=$creds_sum"
} > "$tmp"
mv -f "$tmp" "$state/assistant-status"
echo "rachel-assistant fixture started for owner $TELEGRAM_OWNER_ID"
exec sleep infinity
