#!/usr/bin/env python3
"""The demo's events as canonical JSON lines on stdout.

Usage: events.py RUN_ID COUNT

1. The examples of schemas/examples/ (one per category), each with a fresh event id.
2. COUNT generated events shaped like the examples, spread over three tenants and three hosts
   per tenant; every seventh network-shaped one talks to 198.51.100.66, an address the demo's
   TAXII feed (scripts/demo/indicators.stix.json) publishes as an indicator. The examples
   themselves touch 203.0.113.50, updates.example.org and a dropper hash from the same feed.
3. One resolution event (label secflow_status: resolved) for the Office/PowerShell incident of
   tenant acme-corp on ws-fin-042, so PagerDuty resolves it and OpsGenie closes it.

Event ids start with RUN_ID, so every run's events are new to the simulators.
"""
import copy
import glob
import json
import os
import sys

PLANTED_IP = "198.51.100.66"
TENANTS = ["acme-corp", "globex", "initech"]


def main() -> None:
    run_id, count = sys.argv[1], int(sys.argv[2])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    files = sorted(glob.glob(os.path.join(root, "schemas", "examples", "*.json")))
    examples = [json.load(open(f)) for f in files]
    out = []
    for i, e in enumerate(examples):
        e = copy.deepcopy(e)
        e["event_id"] = f"{run_id}-example-{i:02d}"
        out.append(e)
    for i in range(count):
        e = copy.deepcopy(examples[i % len(examples)])
        e["event_id"] = f"{run_id}-gen-{i:05d}"
        tenant = TENANTS[(i // len(examples)) % len(TENANTS)]
        e["tenant"] = tenant
        if isinstance(e.get("host"), dict):
            e["host"]["hostname"] = f"{tenant.split('-')[0]}-host-{(i // 39) % 3}"
        net = e.get("network")
        if isinstance(net, dict) and net.get("dst_ip") and ":" not in net["dst_ip"] and i % 7 == 0:
            net["dst_ip"] = PLANTED_IP
        out.append(e)
    alert = next(e for e in examples if e.get("action") == "suspicious_process")
    resolved = copy.deepcopy(alert)
    resolved["event_id"] = f"{run_id}-resolved-00"
    resolved["severity"] = "info"
    resolved.setdefault("labels", {})["secflow_status"] = "resolved"
    out.append(resolved)
    for e in out:
        print(json.dumps(e, separators=(",", ":")))


if __name__ == "__main__":
    main()
