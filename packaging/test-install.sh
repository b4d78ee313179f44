#!/usr/bin/env bash
# Installs a built mongo-backupd package on this machine, checks what the
# installation did, purges it and checks what the purge kept. For CI and
# disposable machines only: it needs root, and refuses to run where
# mongo-backupd is installed already. Works without a running systemd.
# Usage: bash packaging/test-install.sh target/debian/mongo-backupd_*.deb
set -euo pipefail

deb=${1:?usage: test-install.sh PATH.deb}
user=mongo-backupd
config=/etc/mongo-backupd/config.toml
backups=/var/backups/mongo-backupd
wants=/etc/systemd/system/multi-user.target.wants/mongo-backupd.service

fail() {
  echo "test-install.sh: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || fail "needs root (it runs dpkg -i and dpkg --purge)"
if dpkg-query -W -f '${db:Status-Status}' mongo-backupd 2>/dev/null | grep -qv '^not-installed$'; then
  fail "mongo-backupd is installed on this machine already; run this on a disposable one"
fi
# Whatever this run creates that a purge keeps is removed at the end; what
# was there before is left alone.
had_user=no
getent passwd "$user" >/dev/null && had_user=yes
had_backups=no
[ -e "$backups" ] && had_backups=yes

# owner:group mode path
expect_stat() {
  local got
  got=$(stat -c '%U:%G %a' "$3") || fail "$3 does not exist"
  [ "$got" = "$1 $2" ] || fail "$3 is $got, expected $1 $2"
}

echo "== dpkg -i $deb"
dpkg -i "$deb"

echo "== the user, the directories and the configuration"
IFS=: read -r _ _ _ _ _ home shell < <(getent passwd "$user") || fail "no user $user"
[ "$home" = /var/lib/mongo-backupd ] || fail "$user's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "$user's shell is $shell"
getent group "$user" >/dev/null || fail "no group $user"
expect_stat "$user:$user" 700 /var/lib/mongo-backupd
expect_stat "$user:$user" 750 /var/log/mongo-backupd
expect_stat "$user:$user" 700 "$backups"
expect_stat "root:$user" 640 "$config"
if runuser -u nobody -- cat "$config" >/dev/null 2>&1; then
  fail "$config is readable by other users"
fi
stat -c '%N' /usr/bin/mongo-backupd /lib/systemd/system/mongo-backupd.service

echo "== the unit: enabled, not started"
[ -L "$wants" ] || fail "the unit is not enabled ($wants is missing)"
if [ -d /run/systemd/system ] && systemctl is-active --quiet mongo-backupd; then
  fail "the installation started the service"
fi

echo "== the service user accepts the shipped configuration"
runuser -u "$user" -- mongo-backupd check-config

echo "== man mongo-backupd"
page=$(MANWIDTH=100 man -P cat mongo-backupd 2>/dev/null) || fail "man mongo-backupd fails"
for text in "mongo-backupd check-config" "mongo-backupd restore" "mongo-backupd backup-now" \
  "--ns-include" "--dry-run" "--timeout-secs" "EXIT STATUS"; do
  grep -qF -- "$text" <<<"$page" || fail "man mongo-backupd does not show $text"
done

echo "== dpkg --purge mongo-backupd"
# A stand-in for a backup: the purge must keep it.
runuser -u "$user" -- touch "$backups/backup-kept-by-purge"
dpkg --purge mongo-backupd
[ -e "$backups/backup-kept-by-purge" ] || fail "the purge deleted the backups in $backups"
for gone in /var/lib/mongo-backupd /var/log/mongo-backupd /etc/mongo-backupd /usr/bin/mongo-backupd "$wants"; do
  if [ -e "$gone" ] || [ -L "$gone" ]; then
    fail "$gone survived the purge"
  fi
done
getent passwd "$user" >/dev/null || fail "the purge removed the user that owns the backups"

echo "== cleaning up what this test created"
rm -f "$backups/backup-kept-by-purge"
if [ "$had_backups" = no ]; then
  rmdir "$backups"
fi
if [ "$had_user" = no ]; then
  deluser --system --quiet "$user"
  if getent group "$user" >/dev/null; then
    delgroup --system --quiet "$user"
  fi
fi
echo "test-install.sh: installation and purge behave"
