#!/usr/bin/env bash
# Installs the Debian packages Syncwright builds and tests against, when they are missing.
# Idempotent: does nothing (and needs no network) when everything is already installed.
set -euo pipefail

packages=(libgit2-dev libssh2-1-dev libldap-dev libcurl4-openssl-dev libsqlite3-dev slapd ldap-utils pkg-config git sqlite3 openssl python3-ldap python3-yaml python3-jsonschema python3-aiosmtpd
  # Real git servers for the remote tests: sshd with git-shell, nginx with git http-backend.
  openssh-server openssh-client nginx-light fcgiwrap
  # prometheus_client parses /metrics in the tests: an independent reader of the format.
  python3-prometheus-client
  # The PostgreSQL state store: libpq to build, and a server (and psql) for the tests.
  libpq-dev postgresql-15 postgresql-client-15
  # libfaketime: a replica whose clock is off, in the replica tests.
  faketime
  # What scripts/test.sh prints when the tests hang: the processes, and each thread's stack.
  procps gdb
  # A Samba Active Directory domain controller, the tests' AD peer (samba-ad-provision holds
  # the schema files provisioning needs).
  samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} > 0)); then
  echo "Installing missing packages: ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Independent oracles the tests compare with: cronsim (PyPI) for cron, python-ldap (Debian's
# python3-ldap, for /usr/bin/python3) for DNs and LDIF, jsonschema and PyYAML (Debian's) for
# `syncwright schema`.
if ! python3 -c "import cronsim" 2>/dev/null; then
  echo "Installing cronsim (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check cronsim 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages cronsim
fi

# ldaptor (PyPI, on Twisted) speaks LDAP for the fake server that sends large attributes in
# ranges, as Active Directory does (Tests/Fakes/ranged_ldap.py); slapd never does.
if ! python3 -c "import ldaptor" 2>/dev/null; then
  echo "Installing ldaptor (PyPI)"
  python3 -m pip install --quiet --disable-pip-version-check ldaptor 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages ldaptor
fi

