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
#    engine, hence dynostore+libsql.
tansu_version=0.6.0
if ! "$tools/bin/tansu" --version 2>/dev/null | grep -q "$tansu_version"; then
  say "cargo install tansu $tansu_version (one-time, several minutes)"
  cargo install tansu --version "$tansu_version" --locked --features dynostore,libsql --root "$tools" >&2
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
