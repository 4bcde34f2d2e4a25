#!/usr/bin/env bash
# Makes sure the programs the tests use are installed: PostgreSQL's server binaries, Chromium
# (browser tests), cloud-init (schema validation of user data), OpenSSH's server (real sshd).
# As root it installs what is missing with apt-get; otherwise it names the packages to install.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v cloud-init >/dev/null || missing+=(cloud-init)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "installing ${missing[*]} ..." >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Installing openssh-server or cloud-init must not leave services running that the tests do not own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now ssh cloud-init >/dev/null 2>&1 || true; fi
