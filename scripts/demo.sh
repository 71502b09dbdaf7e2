#!/usr/bin/env bash
# The demo: local stack up, topics created, the example events produced through the canonical
# Avro path, read back through the pipeline's consumer path, and a summary printed.
# Leaves the stack running; stop it with `cargo run -q -p devstack -- down`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/bootstrap.sh
cache=${SECFLOW_CACHE:-$HOME/.cache/secflow}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
export SECFLOW_TANSU=${SECFLOW_TANSU:-$root/.tools/bin/tansu}

echo "== building secflow"
cargo build -q --release -p pipeline -p devstack
bin="$CARGO_TARGET_DIR/release"

echo "== local stack (tansu broker + schema registry)"
"$bin/devstack" up
# shellcheck disable=SC1091
source .devstack/env

topology=topologies/dev.yaml
echo "== secflow validate $topology"
"$bin/secflow" validate "$topology"
echo "== secflow topics create"
"$bin/secflow" topics create --topology "$topology"

events=$(mktemp)
trap 'rm -f "$events"' EXIT
for f in schemas/examples/*.json; do
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$f"
done > "$events"
echo "== secflow produce ($(wc -l < "$events") example events, one per file in schemas/examples/)"
"$bin/secflow" produce --topology "$topology" "$events"

echo "== secflow run --stage readback (reads the canonical topic back, decodes, counts)"
SECFLOW_LOG=warn "$bin/secflow" run --topology "$topology" --stage readback --until-idle 5

cat <<EOT

Done. The stack is still up:
  broker    $SECFLOW_BOOTSTRAP
  registry  $SECFLOW_REGISTRY_URL/subjects
  status    $bin/devstack status
  stop      $bin/devstack down
EOT
