#!/usr/bin/env bash
# Checks a built mongo-backupd package: exactly the expected files, owned by
# root with the expected modes; the conffile; the dependencies; a version
# that matches packaging/changelog; a unit that is enabled but not started;
# a man page that documents the commands; a binary without the demo.
# Usage: bash packaging/check-deb.sh target/debian/mongo-backupd_*.deb
set -euo pipefail

deb=$(realpath "${1:?usage: check-deb.sh PATH.deb}")
cd "$(dirname "$0")/.."
problems=0
problem() {
  echo "check-deb.sh: $deb: $*" >&2
  problems=$((problems + 1))
}

# mode path: every file the package must ship, and nothing else. The unit
# is in /usr/lib/systemd/system, which is /lib/systemd/system on Debian 12
# (merged /usr) and where lintian and newer debhelper put units.
expected="\
-rwxr-xr-x usr/bin/mongo-backupd
-rw-r----- etc/mongo-backupd/config.toml
-rw-r--r-- usr/lib/systemd/system/mongo-backupd.service
-rw-r--r-- usr/share/man/man1/mongo-backupd.1.gz
-rw-r--r-- usr/share/bash-completion/completions/mongo-backupd
-rw-r--r-- usr/share/zsh/vendor-completions/_mongo-backupd
-rw-r--r-- usr/share/fish/vendor_completions.d/mongo-backupd.fish
-rw-r--r-- usr/share/doc/mongo-backupd/README.md
-rw-r--r-- usr/share/doc/mongo-backupd/README.Debian
-rw-r--r-- usr/share/doc/mongo-backupd/copyright
-rw-r--r-- usr/share/doc/mongo-backupd/changelog.Debian.gz
-rw-r--r-- usr/share/lintian/overrides/mongo-backupd"

# dpkg-deb -c: MODE OWNER/GROUP SIZE DATE TIME ./PATH (no spaces in ours);
# the owner is numeric or named, depending on the tool that built it.
actual=$(dpkg-deb -c "$deb" |
  awk '$1 !~ /^d/ { sub(/^\.\//, "", $6); if ($2 == "root/root") $2 = "0/0"; print $1, $2, $6 }')
while read -r mode path; do
  line=$(awk -v p="$path" '$3 == p' <<<"$actual")
  if [ -z "$line" ]; then
    problem "missing $path"
  elif [ "$line" != "$mode 0/0 $path" ]; then
    problem "wrong mode or owner: $line (expected $mode 0/0)"
  fi
done <<<"$expected"
while read -r _ _ path; do
  grep -q " $path\$" <<<"$expected" || problem "unexpected file $path"
done <<<"$actual"

conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)
[ "$conffiles" = "/etc/mongo-backupd/config.toml" ] ||
  problem "conffiles should be /etc/mongo-backupd/config.toml, not: $conffiles"

depends=$(dpkg-deb -f "$deb" Depends)
grep -qw adduser <<<"$depends" || problem "postinst runs adduser, but Depends is: $depends"

version=$(dpkg-deb -f "$deb" Version)
changelog_version=$(sed -n '1s/^mongo-backupd (\([^)]*\)).*/\1/p' packaging/changelog)
[ "$version" = "$changelog_version" ] ||
  problem "version $version, but packaging/changelog's newest entry is $changelog_version: add an entry"

# Enabled on installation, never started by it (the shipped configuration
# points at a MongoDB on localhost); upgrades only try-restart.
postinst=$(dpkg-deb -I "$deb" postinst)
grep -q 'deb-systemd-helper enable mongo-backupd.service' <<<"$postinst" ||
  problem "postinst does not enable the unit"
if grep -q 'deb-systemd-invoke \(start\|restart\|\$_dh_action\)' <<<"$postinst"; then
  problem "postinst starts the unit"
fi
grep -q 'adduser --system' <<<"$postinst" || problem "postinst does not create the user"
dpkg-deb -I "$deb" postrm | grep -q 'purge' || problem "postrm has no purge step"
# cargo-deb replaces the first #DEBHELPER# anywhere, even in a comment:
# the sources must hold it once, on a line of its own.
for source in packaging/debian/*; do
  [ "$(grep -c 'DEBHELPER' "$source")" = 1 ] && grep -qx '#DEBHELPER#' "$source" ||
    problem "$source must have #DEBHELPER# once, alone on a line (and nowhere else, not in comments)"
done
for script in preinst postinst prerm postrm; do
  if text=$(dpkg-deb -I "$deb" "$script" 2>/dev/null); then
    sh -n <<<"$text" || problem "$script is not valid sh"
    [ "$(grep -c '#DEBHELPER#' <<<"$text")" = 0 ] || problem "$script still has the debhelper token"
  fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
page=$(zcat "$tmp/usr/share/man/man1/mongo-backupd.1.gz")
for text in 'SS "mongo-backupd check-config"' 'SS "mongo-backupd restore"' '\-\-dry\-run' 'EXIT STATUS'; do
  grep -qF -- "$text" <<<"$page" || problem "the man page lacks $text"
done
help=$("$tmp/usr/bin/mongo-backupd" --help)
grep -q check-config <<<"$help" || problem "the packaged binary's --help lacks check-config"
if grep -qw demo <<<"$help"; then
  problem "the packaged binary has the demo command (build it with --no-default-features)"
fi

if [ "$problems" -gt 0 ]; then
  echo "check-deb.sh: $problems problems in $deb" >&2
  exit 1
fi
echo "check-deb.sh: $deb has the expected contents"
