#!/usr/bin/env bash
# Builds the Debian package of mongo-backupd (see [package.metadata.deb] in
# Cargo.toml): the release binary without the `demo` feature, then the man
# page and the shell completions written by that binary's hidden `generate`
# command into target/packaging/ (so they match the binary exactly), then
# `cargo deb --no-build`. Prints the path of the .deb as its last line.
#
# Needs cargo-deb (cargo install cargo-deb --locked) and dpkg-dev.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "build-deb.sh: cargo-deb is missing: cargo install cargo-deb --locked" >&2
  exit 1
fi

# The package leaves out the default `demo` feature (a test server compiled
# into the binary); [package.metadata.deb] says default-features = false
# too, so cargo deb and this build agree.
cargo build --release --locked --no-default-features --bin mongo-backupd >&2

# Reproducible: the man page's date and the packaged files' times come
# from the newest entry of packaging/changelog.
SOURCE_DATE_EPOCH=$(date -d "$(dpkg-parsechangelog -l packaging/changelog -S Date)" +%s)
export SOURCE_DATE_EPOCH

bin="${CARGO_TARGET_DIR:-target}/release/mongo-backupd"
# Fixed path: the assets in Cargo.toml name it.
out=target/packaging
rm -rf "$out"
"$bin" generate man "$out/man" >&2
"$bin" generate completions "$out/completions" >&2

# cargo deb prints the path of the package it wrote on stdout.
deb=$(cargo deb --no-build --locked --no-default-features)
if [ ! -f "$deb" ]; then
  echo "build-deb.sh: cargo deb did not report a package (got: $deb)" >&2
  exit 1
fi
echo "$deb"
