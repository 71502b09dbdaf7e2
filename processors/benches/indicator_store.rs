//! Indicator store: restore time of 1M indicators (applied in batches of 10k, as from the
//! compacted topic), reopen time, and IOC lookups per second on one core with a warm cache —
//! hits and misses, with the front cache and with RocksDB alone (block cache, bloom filters).
//!
//! `SECFLOW_BENCH_INDICATORS` overrides the number of indicators (default 1,000,000),
//! `SECFLOW_BENCH_BLOCK_CACHE_MB` the block cache of the RocksDB-only runs (default: the
//! store's default). The hot set is 10k hits and 10k misses over every IOC type; a hit touches
//! two data blocks, so 10k hits need ~80 MiB of block cache to stay warm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use processors::event::{Dns, File, Http, Network, SecurityEvent};
use processors::intel::pattern::IocType;
use processors::intel::store::{Change, IndicatorStore, StoreOptions, StoredIndicator};

const NOW: i64 = 1_750_000_000_000;
const BATCH: usize = 10_000;

/// Deterministic pseudo-random numbers (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The IOC of indicator `i`: 40% IPv4 addresses, 5% distinct IPv4 networks (/16, /20, /24,
/// /28), 5%
/// IPv6 (addresses and /48, /64), 25% domains, 10% URLs, 15% SHA-256.
fn ioc(i: u64) -> (IocType, String) {
    let h = Rng(i).next();
    match i % 20 {
        0..=7 => (IocType::Ipv4, ipv4(i)),
        8 => {
            // Distinct, non-overlapping networks: /16 in 128-176.x, /20 in 180-183.x, /24 in
            // 184.0-48.x, /28 in 185.0-3.x.
            let (len, base) =
                [(16u32, 128u32), (20, 180), (24, 184), (28, 185)][((i / 20) % 4) as usize];
            let a = (i / 80) as u32;
            let net = (base << 24) + (a << (32 - len));
            (
                IocType::Ipv4,
                format!("{}/{len}", std::net::Ipv4Addr::from(net)),
            )
        }
        9 => {
            if h.is_multiple_of(2) {
                (
                    IocType::Ipv6,
                    format!("2001:db8:{:x}::{:x}", i >> 16, i & 0xffff),
                )
            } else {
                let len = [48, 64][(h % 2) as usize];
                (
                    IocType::Ipv6,
                    format!("2001:db8:{:x}:{:x}::/{len}", i >> 16, i & 0xffff),
                )
            }
        }
        10..=14 => (IocType::Domain, format!("d{i}.evil{}.test", h % 1000)),
        15 | 16 => (
            IocType::Url,
            format!("http://u{i}.example.net/p/{h:x}?q={i}"),
        ),
        _ => (IocType::Sha256, format!("{h:016x}{:016x}{i:032x}", !h)),
    }
}

fn ipv4(i: u64) -> String {
    // Spread over 1.0.0.0 - 99.255.255.255 (no overlap with the networks).
    let v = 0x0100_0000u32 + (i as u32).wrapping_mul(2_654_435_761) % 0x6200_0000;
    std::net::Ipv4Addr::from(v).to_string()
}

fn indicator(i: u64) -> StoredIndicator {
    StoredIndicator {
        id: format!("indicator--{i:08x}-0000-4000-8000-{:012x}", i * 7919),
        modified_ms: 1_700_000_000_000 + i as i64,
        iocs: vec![ioc(i)],
        valid_until_ms: i.is_multiple_of(3).then_some(NOW + 86_400_000),
        confidence: Some((i % 101) as i32),
        tlp: Some("amber".into()),
        provider: "taxii:bench/collections/c2".into(),
        name: Some(format!("bench indicator {i}")),
    }
}

/// A value that matches indicator `i` (a subdomain for domains, an address inside networks).
fn hit_value(i: u64) -> (IocType, String) {
    let (t, v) = ioc(i);
    match t {
        IocType::Domain => (t, format!("www.{v}")),
        IocType::Ipv4 | IocType::Ipv6 => match v.split_once('/') {
            Some((net, _)) => (t, net.replace("::", "::1")),
            None => (t, v),
        },
        _ => (t, v),
    }
}

/// A value of the same shape that matches nothing.
fn miss_value(i: u64) -> (IocType, String) {
    let (t, v) = ioc(i);
    match t {
        IocType::Ipv4 => (
            t,
            format!("198.{}.{}.{}", 18 + i % 2, (i >> 1) % 256, i % 251),
        ),
        IocType::Ipv6 => (t, format!("fd00::{:x}", i & 0xffff)),
        IocType::Domain => (t, format!("www.benign{i}.example")),
        IocType::Url => (t, format!("{v}&miss")),
        _ => (t, format!("{:064x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
    }
}

/// Event `k` of the match_event benchmark; every tenth one carries the hit value of an
/// indicator in the field of its type.
fn event(k: u64, n: u64) -> SecurityEvent {
    let mut e = SecurityEvent::from_json(
        r#"{"event_id":"e","event_time":0,"observed_time":0,"tenant":"t","kind":"event",
            "category":"network","activity":"traffic","action":"a","outcome":"success",
            "severity":"info","message":"m","product":{"vendor":"v","name":"n"},
            "network":{"src_ip":"192.0.2.1"}}"#,
    )
    .unwrap();
    e.event_id = format!("event-{k}");
    e.network = Some(Network {
        src_ip: Some(miss_value(k * 20).1),
        dst_ip: Some(miss_value(k * 20 + 1).1),
        ..Default::default()
    });
    e.dns = Some(Dns {
        query: miss_value(k * 20 + 10).1,
        ..Default::default()
    });
    e.http = Some(Http {
        url: miss_value(k * 20 + 15).1,
        ..Default::default()
    });
    e.file = Some(File {
        path: "/tmp/x".into(),
        sha256: Some(miss_value(k * 20 + 17).1),
        ..Default::default()
    });
    if k.is_multiple_of(10) {
        let (t, v) = hit_value((k * 7919) % n);
        match t {
            IocType::Ipv4 | IocType::Ipv6 => {
                e.network.get_or_insert_with(Default::default).dst_ip = Some(v)
            }
            IocType::Domain => e.dns.get_or_insert_with(Default::default).query = v,
            IocType::Url => e.http.get_or_insert_with(Default::default).url = v,
            _ => e.file.get_or_insert_with(Default::default).sha256 = Some(v),
        }
    }
    e
}

fn restore(dir: &std::path::Path, n: u64) -> Duration {
    let store = IndicatorStore::open(dir, StoreOptions::default()).unwrap();
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + BATCH as u64).min(n);
        let batch: Vec<Change> = (i..end).map(|k| Change::Upsert(indicator(k))).collect();
        store.apply(&batch, &[(0, end as i64)]).unwrap();
        i = end;
    }
    let took = start.elapsed();
    assert_eq!(store.count(), n);
    took
}

/// `SECFLOW_BENCH_BLOCK_CACHE_MB` overrides the block cache of the RocksDB-only runs.
fn block_cache_bytes() -> usize {
    std::env::var("SECFLOW_BENCH_BLOCK_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(StoreOptions::default().block_cache_bytes, |mb| mb << 20)
}

fn main() {
    let n: u64 = std::env::var("SECFLOW_BENCH_INDICATORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();

    let took = restore(dir.path(), n);
    println!(
        "restore/{n}: {:.2} s ({:.0} indicators/s, batches of {BATCH})",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    let t = Instant::now();
    let store = IndicatorStore::open(dir.path(), StoreOptions::default()).unwrap();
    println!(
        "reopen/{n}: {:.3} s (offsets {:?})",
        t.elapsed().as_secs_f64(),
        store.offsets().unwrap()
    );
    let t = Instant::now();
    store.compact().unwrap();
    println!("compact/{n}: {:.2} s", t.elapsed().as_secs_f64());

    // Hot set: 10k values that match and 10k that do not, over every type.
    let hot = 10_000u64;
    let stride = (n / hot).max(20);
    let hits: Vec<(IocType, String)> = (0..hot)
        .map(|k| hit_value((k * stride + k % 20) % n))
        .collect();
    let misses: Vec<(IocType, String)> = (0..hot)
        .map(|k| miss_value((k * stride + k % 20) % n))
        .collect();
    for (t, v) in &hits {
        assert!(!store.lookup(*t, v, NOW).unwrap().is_empty(), "{t} {v}");
    }
    for (t, v) in &misses {
        assert!(store.lookup(*t, v, NOW).unwrap().is_empty(), "{t} {v}");
    }

    let mut c = Criterion::default().configure_from_args();
    let bench_set = |c: &mut Criterion, name: &str, store: &IndicatorStore| {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(hot));
        g.bench_function("hits", |b| {
            b.iter(|| {
                for (t, v) in &hits {
                    black_box(store.lookup(*t, v, NOW).unwrap());
                }
            })
        });
        g.bench_function("misses", |b| {
            b.iter(|| {
                for (t, v) in &misses {
                    black_box(store.lookup(*t, v, NOW).unwrap());
                }
            })
        });
        g.finish();
    };
    bench_set(&mut c, "lookup_front_cache", &store);

    // Whole events: 1,000 network/DNS/HTTP/file events with 5 values each (src and dst IP,
    // DNS query, URL and its host, file SHA-256), one event in ten carrying a match.
    let events: Vec<SecurityEvent> = (0..1000u64).map(|k| event(k, n)).collect();
    let matched = events
        .iter()
        .filter(|e| !store.match_event(e, NOW).unwrap().is_empty())
        .count();
    assert_eq!(matched, 100);
    let mut g = c.benchmark_group("match_event_front_cache");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("events", |b| {
        b.iter(|| {
            for e in &events {
                black_box(store.match_event(e, NOW).unwrap());
            }
        })
    });
    g.finish();
    drop(store);

    // RocksDB alone: no front cache; the hot set's blocks stay in the block cache.
    let raw = IndicatorStore::open(
        dir.path(),
        StoreOptions {
            front_cache_entries: 0,
            block_cache_bytes: block_cache_bytes(),
            ..Default::default()
        },
    )
    .unwrap();
    for (t, v) in hits.iter().chain(&misses) {
        black_box(raw.lookup(*t, v, NOW).unwrap());
    }
    bench_set(&mut c, "lookup_rocksdb_only", &raw);
    c.final_summary();
}
