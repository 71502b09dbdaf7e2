#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Installs what it needs first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
start=$(date +%s)
bash scripts/bootstrap.sh
cache=${SECFLOW_CACHE:-$HOME/.cache/secflow}
# One build cache for every clone on this machine keeps warm CI runs short.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
# Incremental caches are per clone path and per revision and nothing deletes them; a test run
# rebuilds our crates once, so it gains little from them. Stale outputs of other clones go too.
export CARGO_INCREMENTAL=0
python3 scripts/prune_target.py "$CARGO_TARGET_DIR" "$root"
export SECFLOW_TANSU=${SECFLOW_TANSU:-$root/.tools/bin/tansu}
export SECFLOW_VENV=${SECFLOW_VENV:-$root/.tools/venv}

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$cache/last-test.log"
status=${PIPESTATUS[0]}
echo "== test suite finished in $(( $(date +%s) - start ))s (exit $status)"
exit "$status"
