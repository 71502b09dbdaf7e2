#!/usr/bin/env python3
"""The demo's summary: per-stage counts (from the last /metrics scrape of `secflow run`, with
the run report as the fallback), what each simulator received, the threat-intel matches, and
where to look next. Exits 1 when the run did not do what the demo promises (an event-stream sink
missing events, a duplicate PagerDuty trigger or OpsGenie create, two chat messages in one
channel within a second, dead letters), after printing why.

Usage: summary.py --events FILE --report FILE --metrics FILE --devstack DIR --topology FILE
                  --metrics-url URL --secflow BIN
"""
import argparse
import collections
import json
import os
import re
import sys
import urllib.request

STREAMS = [
    # (sink stage, simulator, port)
    ("splunk", "hec", 8123),
    ("elastic", "elastic", 8124),
    ("soar", "webhook", 8125),
    ("datadog", "datadog", 8126),
    ("sumo", "sumo-logic", 8127),
]
STAGES = [
    "taxii", "enrich", "to-formats", "splunk", "elastic", "soar", "datadog", "sumo",
    "siem-syslog", "pagerduty", "opsgenie", "slack", "teams",
]
SINKS = STAGES[3:]
IOC_IPS = {"203.0.113.50", "198.51.100.66"}
IOC_DOMAINS = {"updates.example.org"}
IOC_HASHES = {"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def parse_metrics(text):
    """[(name, {label: value}, number)] of a Prometheus text exposition."""
    out = []
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
    label_re = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            continue
        labels = dict(label_re.findall(m.group(3) or ""))
        try:
            out.append((m.group(1), labels, float(m.group(4))))
        except ValueError:
            pass
    return out


def total(metrics, name, **want):
    return sum(v for n, labels, v in metrics
               if n == name and all(labels.get(k) == x for k, x in want.items()))


def by_label(metrics, name, label, **want):
    out = collections.Counter()
    for n, labels, v in metrics:
        if n == name and all(labels.get(k) == x for k, x in want.items()):
            out[labels.get(label, "")] += v
    return out


def expected_matches(events):
    """Events whose values the demo feed's indicators match (the fields the enricher looks
    up: IPs, host names and DNS queries, HTTP URL hosts, file/process hashes)."""
    n = 0
    for e in events:
        net = e.get("network") or {}
        host = e.get("host") or {}
        values = {net.get("src_ip"), net.get("dst_ip"), *(host.get("ip") or [])}
        names = {net.get("src_hostname"), net.get("dst_hostname"), (e.get("dns") or {}).get("query")}
        url = (e.get("http") or {}).get("url") or ""
        m = re.match(r"^[a-z]+://([^/:?#]+)", url)
        if m:
            names.add(m.group(1))
        f, p = e.get("file") or {}, e.get("process") or {}
        hashes = {f.get("sha256"), p.get("sha256")}
        if values & IOC_IPS or names & IOC_DOMAINS or hashes & IOC_HASHES:
            n += 1
    return n


def max_per_second(times_us):
    most, start = 0, 0
    for end in range(len(times_us)):
        while times_us[end] - times_us[start] >= 1_000_000:
            start += 1
        most = max(most, end - start + 1)
    return most


def main():
    ap = argparse.ArgumentParser()
    for a in ["--events", "--report", "--metrics", "--devstack", "--topology", "--metrics-url", "--secflow"]:
        ap.add_argument(a, required=True)
    args = ap.parse_args()
    events = [json.loads(l) for l in open(args.events) if l.strip()]
    ids = {e["event_id"] for e in events}
    report = open(args.report).read() if os.path.exists(args.report) else ""
    metrics_text = open(args.metrics).read() if os.path.exists(args.metrics) else ""
    metrics = parse_metrics(metrics_text)
    problems = []

    # ---- per stage ----
    print("\n== per stage (records in / out / dead-lettered; from the last /metrics scrape)")
    print(f"{'stage':<12} {'in':>8} {'out':>8} {'dlq':>5}  notes")
    report_lines = {}
    for line in report.splitlines():
        m = re.match(r"^stage (\S+): (.*)$", line)
        if m:
            report_lines[m.group(1)] = m.group(2)
    for st in STAGES:
        rin = total(metrics, "secflow_records_in_total", stage=st)
        rout = total(metrics, "secflow_records_out_total", stage=st)
        dlq = total(metrics, "secflow_dlq_writes_total", stage=st)
        notes = []
        if st == "taxii":
            objs = by_label(metrics, "secflow_taxii_objects_total", "disposition")
            notes.append(", ".join(f"{int(v)} {k}" for k, v in sorted(objs.items()))
                         or "polled once: nothing new since `intel poll --once` above")
        elif st == "enrich":
            m = re.search(r"(\d+) with matches \((\d+) enrichments\)", report_lines.get(st, ""))
            if m:
                notes.append(f"{m.group(1)} events matched indicators ({m.group(2)} enrichments)")
        elif st == "to-formats":
            outs = by_label(metrics, "secflow_records_out_total", "topic", stage=st)
            notes.append(", ".join(f"{k.split('.')[-2]} {int(v)}" for k, v in sorted(outs.items())))
        else:
            sup = by_label(metrics, "secflow_sink_suppressed_total", "reason", sink=st)
            if sup:
                notes.append("suppressed: " + ", ".join(f"{k} {int(v)}" for k, v in sorted(sup.items())))
        if not metrics and st in report_lines:
            notes = [report_lines[st]]
        if dlq:
            problems.append(f"{st}: {int(dlq)} records dead-lettered")
        print(f"{st:<12} {int(rin):>8} {int(rout):>8} {int(dlq):>5}  {'; '.join(notes)}")
    if not metrics:
        print("(no /metrics scrape was taken: the run report above has the counts)")

    # ---- simulators ----
    print(f"\n== what the simulators received ({len(ids)} events produced this run)")
    for stage, kind, port in STREAMS:
        url = f"http://127.0.0.1:{port}/_sim/received"
        r = get_json(url)
        got = set(r["event_ids"])
        s = r["stats"]
        missing = len(ids - got)
        print(f"{kind:<11} {s['unique_events']:>6} events ({s['duplicate_events']} duplicates) in "
              f"{s['requests']} requests{'' if not missing else f', {missing} MISSING'}   GET {url}")
        if missing:
            problems.append(f"{stage}: {missing} events did not reach {kind}")
    syslog_log = os.path.join(args.devstack, "sim-syslog.log")
    seen = collections.Counter()
    refused = 0
    for line in open(syslog_log):
        if line.startswith("{"):
            m = json.loads(line)
            if "refused" in m:
                refused += 1
            elif m.get("event_id"):
                seen[m["event_id"]] += 1
    missing = len(ids - set(seen))
    print(f"{'syslog':<11} {len(seen):>6} CEF messages ({sum(v - 1 for v in seen.values())} duplicates, "
          f"{refused} refused){'' if not missing else f', {missing} MISSING'}   {syslog_log}")
    if missing or refused:
        problems.append(f"siem-syslog: {missing} events missing, {refused} messages refused")
    for kind, port, path, key, open_word, close_word in [
        ("pagerduty", 8128, "/_sim/pagerduty", "incidents", "triggered", "resolved"),
        ("opsgenie", 8129, "/_sim/opsgenie", "alerts", "created", "closed"),
    ]:
        url = f"http://127.0.0.1:{port}{path}"
        r = get_json(url)
        inc = r[key]
        opened = sum(h["opened"] for h in inc.values())
        dup = sum(h["deduplicated"] for h in inc.values())
        closed = sum(h["resolved"] for h in inc.values())
        still = sum(1 for h in inc.values() if h["open"])
        extra = f", {len(r.get('pings', []))} heartbeat pings" if kind == "opsgenie" else ""
        print(f"{kind:<11} {len(inc):>6} {key}: {opened} {open_word}, {dup} duplicate, {closed} {close_word}, "
              f"{still} open{extra}   GET {url}")
        if dup:
            problems.append(f"{kind}: {dup} duplicate triggers/creates reached the vendor")
    for kind, port in [("slack", 8130), ("teams", 8131)]:
        url = f"http://127.0.0.1:{port}/_sim/{kind}/messages"
        r = get_json(url)
        per = collections.defaultdict(list)
        for m in r["messages"]:
            per[m["channel"]].append(m["received_us"])
        parts = []
        for ch, times in sorted(per.items()):
            times.sort()
            most = max_per_second(times)
            parts.append(f"#{ch} {len(times)}")
            if most > 1:
                problems.append(f"{kind} #{ch}: {most} messages within one second")
        throttled = len(r["throttled"])
        print(f"{kind:<11} {len(r['messages']):>6} messages ({', '.join(parts) or 'none'}), at most one per "
              f"channel per second, {throttled} refused as too fast and retried   GET {url}")

    # ---- threat intel ----
    print("\n== threat intel")
    want = expected_matches(events)
    m = re.search(r"(\d+) with matches \((\d+) enrichments\)", report_lines.get("enrich", ""))
    got = int(m.group(1)) if m else None
    ind = re.search(r"indicator table: (\d+) indicators", report_lines.get("enrich", ""))
    print(f"indicators in the enrich table: {ind.group(1) if ind else '?'}; events that matched: "
          f"{got if got is not None else '?'} of {len(events)} (the events' values predict {want})")
    if want and not got:
        problems.append("enrich: no event matched an indicator")

    # ---- where to look ----
    t = args.topology
    print("\n== where to look")
    print(f"metrics     {args.metrics_url}  (served while `secflow run` runs; the last scrape is {args.metrics})")
    print(f"run report  {args.report}")
    print(f"DLQ         {args.secflow} dlq list --topology {t} --sink NAME")
    print(f"            {args.secflow} dlq inspect --topology {t} --sink NAME --limit 5")
    print(f"            {args.secflow} dlq replay --topology {t} --sink NAME --dry-run")
    print(f"            NAME: {' '.join(SINKS)} (or enrich, to-formats)")
    print(f"simulators  curl http://127.0.0.1:8123/_sim/received   (ports 8123-8131; syslog log {syslog_log})")
    print(f"logs        {args.devstack}/*.log")
    print(f"stop        {os.path.dirname(args.secflow)}/devstack down")

    if problems:
        print("\nDEMO PROBLEMS:")
        for p in problems:
            print(f"  - {p}")
        sys.exit(1)


if __name__ == "__main__":
    main()
