#!/usr/bin/env bash
# The demo: the whole flow on this machine.
#
#   1. bootstrap (idempotent installs) and a release build of secflow and devstack;
#   2. the local stack: tansu broker + schema registry (`devstack up`), the ten sink simulators
#      (`devstack sims up`: Splunk HEC, Elasticsearch, webhook, Datadog, Sumo Logic, PagerDuty,
#      OpsGenie, Slack, Teams, syslog) and a TAXII 2.1 server (`devstack taxii up`: OASIS
#      medallion from the venv, serving scripts/demo/indicators.stix.json);
#   3. `secflow topics create`, `secflow intel poll --once` (indicators into the compacted topic);
#   4. `secflow produce` of the example events plus generated ones (some carrying the feed's
#      IOCs, one resolving an incident);
#   5. `secflow run --topology topologies/demo.yaml --until-idle`: enrich, the three transforms
#      (ECS, CEF, OCSF in one stage) and every sink, in one process, scraped on /metrics;
#   6. a summary: per-stage counts, what each simulator received, the intel matches, and where
#      to look (metrics URL, DLQ commands). Exits non-zero if the run fell short.
#
# Idempotent: a re-run reuses the running broker, registry and TAXII server, restarts the
# simulators (so their counts are this run's) and produces new events. Everything stays up
# afterwards; stop it with `~/.cache/secflow/target/release/devstack down`.
# DEMO_EVENTS (default 2000) sets how many events are generated besides the examples.
set -euo pipefail
started=$(date +%s)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/bootstrap.sh
cache=${SECFLOW_CACHE:-$HOME/.cache/secflow}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
export SECFLOW_TANSU=${SECFLOW_TANSU:-$root/.tools/bin/tansu}
export SECFLOW_VENV=${SECFLOW_VENV:-$root/.tools/venv}

say() { printf '\n== %s\n' "$*"; }

say "building secflow and devstack (release)"
cargo build -q --release -p pipeline -p devstack
bin="$CARGO_TARGET_DIR/release"
devstack="$bin/devstack"
secflow="$bin/secflow"

devdir="$root/.devstack"
demo="$devdir/demo"
mkdir -p "$demo"
say "local stack: broker + schema registry"
"$devstack" up
say "sink simulators (restarted, so their counts are this run's)"
"$devstack" sims down >/dev/null
"$devstack" sims up
say "TAXII 2.1 server (medallion)"
"$devstack" taxii up --objects scripts/demo/indicators.stix.json
# shellcheck disable=SC1091
source "$devdir/env"
# shellcheck disable=SC1091
source "$devdir/sinks.env"
# shellcheck disable=SC1091
source "$devdir/taxii.env"
export SECFLOW_STATE_DIR="$devdir/state"
mkdir -p "$SECFLOW_STATE_DIR"
# The simulated vendors were restarted: drop the sinks' memory of open incidents and threads
# with them, and rebuild the enrich table from the indicator topic.
rm -rf "$SECFLOW_STATE_DIR"/{pagerduty,opsgenie,slack}.state.json "$SECFLOW_STATE_DIR/enrich-indicators"

topology=topologies/demo.yaml
say "secflow validate $topology"
"$secflow" validate "$topology"
say "secflow topics create"
"$secflow" topics create --topology "$topology" | awk '{n[$1]++} END {for (k in n) printf "  %s: %d topics\n", k, n[k]}'
say "secflow intel poll --once (TAXII → intel.indicators.v1)"
SECFLOW_LOG=warn "$secflow" intel poll --topology "$topology" --once

run_id="demo$(date +%Y%m%d%H%M%S)"
events="$demo/events.jsonl"
python3 scripts/demo/events.py "$run_id" "${DEMO_EVENTS:-2000}" > "$events"
say "secflow produce ($(wc -l < "$events") events: the $(ls schemas/examples/*.json | wc -l) examples, ${DEMO_EVENTS:-2000} generated, 1 resolution)"
"$secflow" produce --topology "$topology" --rejects "$demo/rejects.jsonl" "$events"

# The metrics listener: 9464 unless something else holds it.
port=$(python3 - <<'EOF'
import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 9464))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
)
metrics_url="http://127.0.0.1:$port/metrics"
say "secflow run --topology $topology --until-idle 20 (taxii, enrich, to-formats, 10 sinks; metrics on $metrics_url)"
SECFLOW_LOG=warn SECFLOW_METRICS_ADDR="127.0.0.1:$port" \
  "$secflow" run --topology "$topology" --until-idle 20 > "$demo/run-report.txt" 2> "$demo/run.log" &
run_pid=$!
trap 'kill "$run_pid" 2>/dev/null || true' EXIT
rm -f "$demo/metrics.prom"
# Scrape every second while it runs: the last scrape falls in the final idle period, so it has
# the final counts.
while kill -0 "$run_pid" 2>/dev/null; do
  if curl -sf "$metrics_url" -o "$demo/metrics.tmp" 2>/dev/null; then
    mv "$demo/metrics.tmp" "$demo/metrics.prom"
  fi
  sleep 1
done
status=0
wait "$run_pid" || status=$?
trap - EXIT
sed 's/^/  /' "$demo/run-report.txt"
if [ "$status" -ne 0 ]; then
  echo "secflow run failed (exit $status); the end of its log ($demo/run.log):" >&2
  tail -n 30 "$demo/run.log" >&2
  exit 1
fi

python3 scripts/demo/summary.py --events "$events" --report "$demo/run-report.txt" \
  --metrics "$demo/metrics.prom" --devstack "$devdir" --topology "$topology" \
  --metrics-url "$metrics_url" --secflow "$secflow"

say "done in $(( $(date +%s) - started )) s; the stack is still up"
"$devstack" status
