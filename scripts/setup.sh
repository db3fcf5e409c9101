#!/usr/bin/env bash
# Set up this checkout on a fresh Debian/Ubuntu machine: OpenSSH (client and server), a Secret
# Service for the keyring tests, and a virtual environment .venv with rdev and its test extras.
# System packages are installed only when missing (and need root); running it again is quick.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ssh >/dev/null || missing+=(openssh-client)
[ -x /usr/sbin/sshd ] || command -v sshd >/dev/null || missing+=(openssh-server)
command -v gnome-keyring-daemon >/dev/null || missing+=(gnome-keyring)
{ command -v dbus-daemon && command -v dbus-run-session; } >/dev/null || missing+=(dbus)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
# Far hosts as they are: network namespaces (iproute2), test users whose login shells are tcsh, zsh or fish,
# nc for the bridge's fallback, pgrep to count what runs on a host.
command -v ip >/dev/null || missing+=(iproute2)
for shell in tcsh zsh fish; do command -v "$shell" >/dev/null || missing+=("$shell"); done
command -v nc >/dev/null || missing+=(netcat-openbsd)
command -v pgrep >/dev/null || missing+=(procps)
command -v tmux >/dev/null || missing+=(tmux)
command -v rsync >/dev/null || missing+=(rsync)
# The system's own python3 too: a password host's user meets it, and `rdev jupyter` makes a venv with it.
[ ! -x /usr/bin/python3 ] || /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install ${missing[*]} (e.g. sudo apt-get install ${missing[*]}) and run again." >&2
    exit 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Google's real Colab CLI, for the tests that drive it against a stand-in runtime proxy. It sits in its own
# venv (it pins its own dependencies) and says it needs Python >= 3.12 but runs on 3.11, hence --ignore-requires-python.
[ -x .venv-colab/bin/python ] || python3 -m venv .venv-colab
if ! { [ -x .venv-colab/bin/colab ] && .venv-colab/bin/python -m pip show google-colab-cli 2>/dev/null | grep -qx 'Version: 0.7.5'; }; then
  .venv-colab/bin/python -m pip install -q --disable-pip-version-check --ignore-requires-python 'google-colab-cli==0.7.5'
fi

# Slurm for the cluster tests: Debian's slurm-wlm (slurmctld, slurmd, the client commands) and munge. The tests
# start their own daemons from their own config (tests/slurm_cluster.py); the packages must not start the
# system's, and without systemd their init scripts would, so a policy-rc.d refuses (removed only if ours).
slurm_missing=()
for binary in slurmctld slurmd munged sbatch; do
  [ -x "/usr/sbin/$binary" ] || [ -x "/usr/bin/$binary" ] || command -v "$binary" >/dev/null || slurm_missing+=("$binary")
done
if [ ${#slurm_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install slurm-wlm slurm-client munge (e.g. sudo apt-get install slurm-wlm slurm-client munge) and run again." >&2
    exit 1
  fi
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  [ ${#missing[@]} -gt 0 ] || apt-get update -q  # the first section updated the lists already when it installed
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm slurm-client munge
fi
