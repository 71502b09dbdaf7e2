#!/usr/bin/env bash
# Installs everything secflow's demo and tests need on a fresh Debian machine. Idempotent: each
# step checks first and does nothing when its result is already there. Tools are cached outside
# the clone (SECFLOW_CACHE, default ~/.cache/secflow) so fresh clones on the same machine reuse
# them; `.tools` in the repo is a git-ignored link to that cache.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${SECFLOW_CACHE:-$HOME/.cache/secflow}
tools="$root/.tools"
if [ ! -e "$tools" ]; then
  mkdir -p "$cache/tools"
  ln -s "$cache/tools" "$tools"
fi

say() { printf '[bootstrap] %s\n' "$*" >&2; }

# 1. Debian packages: C toolchain pieces for librdkafka and RocksDB (bindgen needs libclang).
packages=(build-essential pkg-config cmake libclang-dev clang libssl-dev zlib1g-dev libzstd-dev liblz4-dev libcurl4-openssl-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. The tansu broker (Kafka protocol, memory engine). The default features lack the memory
#    engine, hence dynostore+libsql. It is built from the crates.io sources with our patches
#    applied: devstack/tansu/<crate>/*.patch patch that tansu crate (each file says what it fixes,
#    numbered in the order they were written). A stamp of the patches' hash tells whether the
#    installed binary is current.
tansu_version=0.6.0
patches=("$root"/devstack/tansu/*/*.patch)
tansu_stamp="$tools/bin/.tansu-$tansu_version-patches.sha256"
want_tansu=$(for p in "${patches[@]}"; do echo "${p#"$root"/}"; cat "$p"; done | sha256sum | cut -d' ' -f1)
if ! "$tools/bin/tansu" --version 2>/dev/null | grep -q "$tansu_version" \
  || [ "$(cat "$tansu_stamp" 2>/dev/null)" != "$want_tansu" ]; then
  say "building tansu $tansu_version with ${#patches[@]} patch(es) (one-time, several minutes)"
  build="$cache/tansu-build"
  # One build at a time (a demo and a test run may bootstrap together).
  exec 9>"$cache/.tansu-build.lock"
  flock 9
  rm -rf "$build" && mkdir -p "$build/fetch/src"
  # Let cargo fetch the exact published sources (same registry and mirrors as any build).
  printf '[package]\nname = "tansu-sources"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ntansu = { version = "=%s", features = ["dynostore", "libsql"] }\n' \
    "$tansu_version" > "$build/fetch/Cargo.toml"
  : > "$build/fetch/src/lib.rs"
  cargo fetch -q --manifest-path "$build/fetch/Cargo.toml" >&2
  registry_src=$(dirname "$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"tansu-$tansu_version" | head -1)")
  cp -r "$registry_src/tansu-$tansu_version" "$build/"
  printf '\n[patch.crates-io]\n' >> "$build/tansu-$tansu_version/Cargo.toml"
  for dir in "$root"/devstack/tansu/*/; do
    crate=$(basename "$dir")
    cp -r "$registry_src/$crate-$tansu_version" "$build/"
    for p in "$dir"*.patch; do
      (cd "$build/$crate-$tansu_version" && git apply -p1 "$p")
    done
    printf '%s = { path = "../%s-%s" }\n' "$crate" "$crate" "$tansu_version" \
      >> "$build/tansu-$tansu_version/Cargo.toml"
  done
  # The published Cargo.lock pins every other dependency: let cargo record the patched crates
  # in it (nothing else moves), then install with exactly that lock.
  (cd "$build/tansu-$tansu_version" && cargo metadata -q --format-version 1 >/dev/null)
  CARGO_TARGET_DIR="$cache/tansu-target" cargo install --locked --path "$build/tansu-$tansu_version" \
    --features dynostore,libsql --root "$tools" --force >&2
  echo "$want_tansu" > "$tansu_stamp"
fi

# 3. Python venv: OASIS medallion (TAXII 2.1 server) and Confluent's client (registry tests).
venv="$tools/venv"
requirements="$root/scripts/requirements-dev.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "python venv at $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$requirements" >&2
  echo "$want" > "$stamp"
fi
say "ready: tansu $("$tools/bin/tansu" --version 2>/dev/null | head -1), venv $venv"
