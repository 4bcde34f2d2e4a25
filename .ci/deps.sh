#!/usr/bin/env bash
# Makes sure the programs the tests use are installed: PostgreSQL's server binaries, Chromium
# (browser tests), cloud-init (schema validation of user data), OpenSSH's server (real sshd), and
# for the real VPSes behind the simulator (internal/hcloudsim/realvps): systemd-nspawn, nft, ip and
# the en_US locale sources, sudo and curl (the real VPSes run this machine's image, and Hetzner's
# debian-12 image has them).
# internal/testkit.Tools lists every program a test runs with its package; a test holds this
# script to that list.
# As root it installs what is missing with apt-get; otherwise it names the packages to install.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
command -v cloud-init >/dev/null || missing+=(cloud-init)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || missing+=(iproute2)
[ -f /usr/share/i18n/locales/en_US ] || missing+=(locales)
command -v localedef >/dev/null || missing+=(libc-bin)
command -v nsenter >/dev/null || missing+=(util-linux)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
# systemd-analyze checks the assistant's unit (internal/cloudinit); visudo (sudo) its sudo rule.
command -v systemd-analyze >/dev/null || missing+=(systemd)
# Hetzner's debian-12 image has sudo and curl; the real VPSes run on this machine's image.
[ -x /usr/bin/sudo ] || missing+=(sudo)
[ -x /usr/bin/curl ] || missing+=(curl)
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
