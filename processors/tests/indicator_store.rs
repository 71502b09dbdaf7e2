//! The RocksDB indicator store and event matcher (`processors::intel::store`).
#![cfg(feature = "indicator-store")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use processors::event::{
    Attachment, Dns, DnsAnswer, Email, File, Host, Http, Network, Process, SecurityEvent, User,
};
use processors::intel::pattern::IocType;
use processors::intel::store::{
    Change, IndexStats, IndicatorStore, Match, StoreError, StoreOptions, StoredIndicator,
};

const NOW: i64 = 1_750_000_000_000;

fn open(dir: &tempfile::TempDir) -> IndicatorStore {
    IndicatorStore::open(dir.path(), StoreOptions::default()).unwrap()
}

fn ind(id: &str, modified_ms: i64, iocs: &[(IocType, &str)]) -> StoredIndicator {
    StoredIndicator {
        id: id.to_owned(),
        modified_ms,
        iocs: iocs.iter().map(|(t, v)| (*t, (*v).to_owned())).collect(),
        valid_until_ms: None,
        confidence: Some(80),
        tlp: Some("amber".into()),
        provider: "test-feed".into(),
        name: Some(format!("name of {id}")),
    }
}

fn up(i: StoredIndicator) -> Change {
    Change::Upsert(i)
}

fn del(id: &str) -> Change {
    Change::Delete { id: id.to_owned() }
}

/// Ids of the indicators matching a value.
fn ids(s: &IndicatorStore, t: IocType, v: &str) -> Vec<String> {
    let mut ids: Vec<String> = s
        .lookup(t, v, NOW)
        .unwrap()
        .into_iter()
        .map(|m| m.indicator_id)
        .collect();
    ids.dedup();
    ids
}

fn base_event(id: &str) -> SecurityEvent {
    let mut e = SecurityEvent::from_json(
        r#"{"event_id":"x","event_time":0,"observed_time":0,"tenant":"t","kind":"event",
            "category":"network","activity":"traffic","action":"a","outcome":"success",
            "severity":"info","message":"m","product":{"vendor":"v","name":"n"},
            "network":{"src_ip":"192.0.2.1"}}"#,
    )
    .unwrap();
    e.event_id = id.to_owned();
    e.network = None;
    e
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn store_is_send_and_sync() {
    assert_send_sync::<IndicatorStore>();
}

#[test]
fn modified_indicator_removes_old_iocs() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let a = "indicator--a";
    s.apply(
        &[up(ind(
            a,
            1,
            &[
                (IocType::Ipv4, "203.0.113.5"),
                (IocType::Domain, "old.example"),
                (IocType::Ipv4, "198.51.100.0/24"),
            ],
        ))],
        &[(0, 1)],
    )
    .unwrap();
    assert_eq!(ids(&s, IocType::Ipv4, "203.0.113.5"), [a]);
    assert_eq!(ids(&s, IocType::Domain, "www.old.example"), [a]);
    assert_eq!(ids(&s, IocType::Ipv4, "198.51.100.77"), [a]);

    let st = s
        .apply(
            &[up(ind(
                a,
                2,
                &[
                    (IocType::Domain, "new.example"),
                    (IocType::Ipv4, "203.0.113.6"),
                ],
            ))],
            &[(0, 2)],
        )
        .unwrap();
    assert_eq!(st.upserted, 1);
    assert!(ids(&s, IocType::Ipv4, "203.0.113.5").is_empty());
    assert!(ids(&s, IocType::Domain, "www.old.example").is_empty());
    assert!(ids(&s, IocType::Ipv4, "198.51.100.77").is_empty());
    assert_eq!(ids(&s, IocType::Domain, "new.example"), [a]);
    assert_eq!(ids(&s, IocType::Ipv4, "203.0.113.6"), [a]);
    assert_eq!(s.count(), 1);
    // Another indicator sharing an IOC keeps it when the first one drops it.
    let b = "indicator--b";
    s.apply(&[up(ind(b, 1, &[(IocType::Domain, "new.example")]))], &[])
        .unwrap();
    assert_eq!(ids(&s, IocType::Domain, "new.example"), [a, b]);
    s.apply(&[up(ind(a, 3, &[(IocType::Domain, "other.example")]))], &[])
        .unwrap();
    assert_eq!(ids(&s, IocType::Domain, "new.example"), [b]);
    // Several versions of one indicator in one batch: the last one wins.
    s.apply(
        &[
            up(ind(a, 4, &[(IocType::Domain, "v4.example")])),
            up(ind(a, 5, &[(IocType::Domain, "v5.example")])),
        ],
        &[],
    )
    .unwrap();
    assert!(ids(&s, IocType::Domain, "v4.example").is_empty());
    assert!(ids(&s, IocType::Domain, "other.example").is_empty());
    assert_eq!(ids(&s, IocType::Domain, "v5.example"), [a]);
    assert_eq!(s.get(a).unwrap().unwrap().modified_ms, 5);
    // Physically gone from the index, not just filtered out: a (v5.example), b (new.example).
    assert_eq!(
        s.verify().unwrap(),
        IndexStats {
            indicators: 2,
            by_ioc_keys: 2,
            cidr_keys: 0,
            postings: 2
        }
    );
}

#[test]
fn stale_and_unchanged_upserts() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let a = "indicator--a";
    s.apply(&[up(ind(a, 10, &[(IocType::Domain, "new.example")]))], &[])
        .unwrap();
    let st = s
        .apply(&[up(ind(a, 9, &[(IocType::Domain, "old.example")]))], &[])
        .unwrap();
    assert_eq!((st.stale, st.upserted), (1, 0));
    assert!(ids(&s, IocType::Domain, "old.example").is_empty());
    assert_eq!(ids(&s, IocType::Domain, "new.example"), [a]);
    // The same version again (a replay after restart) is a no-op.
    let st = s
        .apply(&[up(ind(a, 10, &[(IocType::Domain, "new.example")]))], &[])
        .unwrap();
    assert_eq!((st.unchanged, st.upserted), (1, 0));
    // Same `modified`, different content: applied.
    let mut changed = ind(a, 10, &[(IocType::Domain, "new.example")]);
    changed.confidence = Some(10);
    let st = s.apply(&[up(changed)], &[]).unwrap();
    assert_eq!(st.upserted, 1);
    assert_eq!(
        s.lookup(IocType::Domain, "new.example", NOW).unwrap()[0].confidence,
        Some(10)
    );
    // Stale within one batch too.
    let st = s
        .apply(
            &[
                up(ind(a, 20, &[(IocType::Domain, "n20.example")])),
                up(ind(a, 15, &[(IocType::Domain, "n15.example")])),
            ],
            &[],
        )
        .unwrap();
    assert_eq!((st.upserted, st.stale), (1, 1));
    assert_eq!(ids(&s, IocType::Domain, "n20.example"), [a]);
    assert!(ids(&s, IocType::Domain, "n15.example").is_empty());
}

#[test]
fn delete_removes_indicator_and_iocs() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.apply(
        &[
            up(ind(
                "indicator--a",
                1,
                &[(IocType::Ipv4, "198.51.100.0/24")],
            )),
            up(ind(
                "indicator--b",
                1,
                &[(IocType::Sha256, &"A".repeat(64))],
            )),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(s.count(), 2);
    let st = s
        .apply(&[del("indicator--a"), del("indicator--zzz")], &[(0, 7)])
        .unwrap();
    assert_eq!((st.deleted, st.unknown_deletes), (1, 1));
    assert_eq!(s.count(), 1);
    assert!(ids(&s, IocType::Ipv4, "198.51.100.1").is_empty());
    assert!(s.get("indicator--a").unwrap().is_none());
    assert_eq!(ids(&s, IocType::Sha256, &"a".repeat(64)), ["indicator--b"]);
    // Delete then re-add within one batch.
    s.apply(
        &[
            del("indicator--b"),
            up(ind("indicator--b", 2, &[(IocType::Md5, &"b".repeat(32))])),
        ],
        &[],
    )
    .unwrap();
    assert!(ids(&s, IocType::Sha256, &"a".repeat(64)).is_empty());
    assert_eq!(ids(&s, IocType::Md5, &"B".repeat(32)), ["indicator--b"]);
    assert_eq!(s.count(), 1);
    let st = s.verify().unwrap();
    assert_eq!((st.by_ioc_keys, st.cidr_keys, st.postings), (1, 0, 1));
}

#[test]
fn valid_until_is_checked_at_match_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mut i = ind("indicator--a", 1, &[(IocType::Domain, "expiring.example")]);
    i.valid_until_ms = Some(NOW);
    s.apply(&[up(i)], &[]).unwrap();
    let at = |now| {
        s.lookup(IocType::Domain, "expiring.example", now)
            .unwrap()
            .len()
    };
    assert_eq!(at(NOW - 1), 1);
    // The same (cached) candidates, a later clock: no match.
    assert_eq!(at(NOW), 0);
    assert_eq!(at(NOW + 1), 0);
    assert_eq!(at(NOW - 1), 1);
    let mut e = base_event("e1");
    e.dns = Some(Dns {
        query: "expiring.example".into(),
        ..Default::default()
    });
    assert_eq!(s.match_event(&e, NOW - 1).unwrap().len(), 1);
    assert!(s.match_event(&e, NOW).unwrap().is_empty());
}

#[test]
fn cidr_v4() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let st = s
        .apply(
            &[
                up(ind("i--24", 1, &[(IocType::Ipv4, "198.51.100.0/24")])),
                up(ind("i--25", 1, &[(IocType::Ipv4, "198.51.100.128/25")])),
                up(ind("i--16", 1, &[(IocType::Ipv4, "10.20.0.0/16")])),
                up(ind("i--hostbits", 1, &[(IocType::Ipv4, "192.0.2.77/28")])),
                up(ind("i--32", 1, &[(IocType::Ipv4, "203.0.113.9/32")])),
                up(ind("i--exact", 1, &[(IocType::Ipv4, "203.0.113.10")])),
                up(ind("i--zero", 1, &[(IocType::Ipv4, "0.0.0.0/0")])),
                up(ind("i--7", 1, &[(IocType::Ipv4, "2.0.0.0/7")])),
                up(ind("i--8", 1, &[(IocType::Ipv4, "11.0.0.0/8")])),
            ],
            &[],
        )
        .unwrap();
    // /0 and /7 are below the default minimum: stored, reported, not indexed.
    let skipped: Vec<_> = st
        .skipped_iocs
        .iter()
        .map(|k| k.indicator_id.as_str())
        .collect();
    assert_eq!(skipped, ["i--zero", "i--7"]);
    assert_eq!(s.count(), 9);
    assert_eq!(ids(&s, IocType::Ipv4, "198.51.100.0"), ["i--24"]);
    assert_eq!(ids(&s, IocType::Ipv4, "198.51.100.127"), ["i--24"]);
    assert_eq!(ids(&s, IocType::Ipv4, "198.51.100.128"), ["i--24", "i--25"]);
    assert_eq!(ids(&s, IocType::Ipv4, "198.51.100.255"), ["i--24", "i--25"]);
    assert!(ids(&s, IocType::Ipv4, "198.51.101.0").is_empty());
    assert!(ids(&s, IocType::Ipv4, "198.51.99.255").is_empty());
    assert_eq!(ids(&s, IocType::Ipv4, "10.20.255.255"), ["i--16"]);
    assert!(ids(&s, IocType::Ipv4, "10.21.0.0").is_empty());
    // Host bits of a CIDR are cleared: 192.0.2.77/28 is 192.0.2.64/28.
    assert_eq!(ids(&s, IocType::Ipv4, "192.0.2.64"), ["i--hostbits"]);
    assert_eq!(ids(&s, IocType::Ipv4, "192.0.2.79"), ["i--hostbits"]);
    assert!(ids(&s, IocType::Ipv4, "192.0.2.80").is_empty());
    // /32 is exactly one address.
    assert_eq!(ids(&s, IocType::Ipv4, "203.0.113.9"), ["i--32"]);
    assert!(ids(&s, IocType::Ipv4, "203.0.113.8").is_empty());
    assert_eq!(ids(&s, IocType::Ipv4, "203.0.113.10"), ["i--exact"]);
    assert_eq!(ids(&s, IocType::Ipv4, "11.255.0.1"), ["i--8"]);
    assert!(ids(&s, IocType::Ipv4, "2.0.0.1").is_empty());
    assert!(ids(&s, IocType::Ipv4, "8.8.8.8").is_empty());
    // IPv4-mapped IPv6 is the IPv4 address.
    assert_eq!(ids(&s, IocType::Ipv6, "::ffff:198.51.100.1"), ["i--24"]);
    // The reported value is the IOC as written.
    let m = s.lookup(IocType::Ipv4, "192.0.2.70", NOW).unwrap();
    assert_eq!(m[0].ioc_value, "192.0.2.77/28");
    assert!(ids(&s, IocType::Ipv4, "not an ip").is_empty());
    assert!(ids(&s, IocType::Ipv4, "198.51.100.0/24").is_empty());
    // Removing the only /25 withdraws that length; lookups stay right.
    s.apply(&[del("i--25")], &[]).unwrap();
    assert_eq!(ids(&s, IocType::Ipv4, "198.51.100.200"), ["i--24"]);
    let st = s.verify().unwrap();
    assert_eq!((st.by_ioc_keys, st.cidr_keys), (2, 4));

    // With the minimum at 0, /0 is indexed and contains every address.
    let dir0 = tempfile::tempdir().unwrap();
    let s0 = IndicatorStore::open(
        dir0.path(),
        StoreOptions {
            min_prefix_v4: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let st = s0
        .apply(
            &[up(ind("i--zero", 1, &[(IocType::Ipv4, "0.0.0.0/0")]))],
            &[],
        )
        .unwrap();
    assert!(st.skipped_iocs.is_empty());
    assert_eq!(ids(&s0, IocType::Ipv4, "8.8.8.8"), ["i--zero"]);
    assert_eq!(ids(&s0, IocType::Ipv4, "255.255.255.255"), ["i--zero"]);
    assert!(ids(&s0, IocType::Ipv6, "2001:db8::1").is_empty());
}

#[test]
fn cidr_v6() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let st = s
        .apply(
            &[
                up(ind("i--32", 1, &[(IocType::Ipv6, "2001:db8::/32")])),
                up(ind("i--64", 1, &[(IocType::Ipv6, "2001:db8:aa:bb::/64")])),
                up(ind("i--127", 1, &[(IocType::Ipv6, "2001:db9::/127")])),
                up(ind("i--128", 1, &[(IocType::Ipv6, "2001:db9::5/128")])),
                up(ind("i--exact", 1, &[(IocType::Ipv6, "2001:DB9::0:6")])),
                up(ind("i--zero", 1, &[(IocType::Ipv6, "::/0")])),
                up(ind(
                    "i--mapped",
                    1,
                    &[(IocType::Ipv6, "::ffff:203.0.113.0/120")],
                )),
                up(ind("i--wrongfam", 1, &[(IocType::Ipv6, "203.0.113.1")])),
            ],
            &[],
        )
        .unwrap();
    let skipped: BTreeSet<_> = st
        .skipped_iocs
        .iter()
        .map(|k| k.indicator_id.as_str())
        .collect();
    assert_eq!(skipped, BTreeSet::from(["i--zero", "i--wrongfam"]));
    assert_eq!(ids(&s, IocType::Ipv6, "2001:db8:ffff::1"), ["i--32"]);
    assert_eq!(
        ids(&s, IocType::Ipv6, "2001:db8:aa:bb:1:2:3:4"),
        ["i--32", "i--64"]
    );
    assert_eq!(ids(&s, IocType::Ipv6, "2001:db8:aa:bc::"), ["i--32"]);
    assert!(ids(&s, IocType::Ipv6, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff").is_empty());
    assert_eq!(ids(&s, IocType::Ipv6, "2001:db9::1"), ["i--127"]);
    assert!(ids(&s, IocType::Ipv6, "2001:db9::2").is_empty());
    assert_eq!(ids(&s, IocType::Ipv6, "2001:db9::5"), ["i--128"]);
    assert_eq!(ids(&s, IocType::Ipv6, "2001:db9:0:0:0:0:0:6"), ["i--exact"]);
    assert!(ids(&s, IocType::Ipv6, "2001:db9::4").is_empty());
    // An IPv4-mapped IPv6 network is the IPv4 network.
    assert_eq!(ids(&s, IocType::Ipv4, "203.0.113.200"), ["i--mapped"]);
    assert!(ids(&s, IocType::Ipv4, "203.0.114.1").is_empty());
}

#[test]
fn parent_domains() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.apply(
        &[
            up(ind("i--example", 1, &[(IocType::Domain, "Example.COM")])),
            up(ind("i--sub", 1, &[(IocType::Domain, "b.example.com")])),
            up(ind("i--tld", 1, &[(IocType::Domain, "com")])),
            up(ind("i--wild", 1, &[(IocType::Domain, "*.wild.example")])),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(ids(&s, IocType::Domain, "example.com"), ["i--example"]);
    assert_eq!(ids(&s, IocType::Domain, "EXAMPLE.com."), ["i--example"]);
    assert_eq!(
        ids(&s, IocType::Domain, "a.b.example.com"),
        ["i--example", "i--sub"]
    );
    assert_eq!(ids(&s, IocType::Domain, "x.example.com"), ["i--example"]);
    assert!(ids(&s, IocType::Domain, "badexample.com").is_empty());
    assert!(ids(&s, IocType::Domain, "example.com.evil").is_empty());
    assert!(ids(&s, IocType::Domain, "b.example.co").is_empty());
    assert!(ids(&s, IocType::Domain, "xb.example.org").is_empty());
    // A single-label indicator matches only itself, never as a parent.
    assert!(ids(&s, IocType::Domain, "other.com").is_empty());
    assert_eq!(ids(&s, IocType::Domain, "com"), ["i--tld"]);
    // Wildcards are not domain names: not indexed.
    assert!(ids(&s, IocType::Domain, "a.wild.example").is_empty());
    let m = s
        .lookup(IocType::Domain, "deep.a.b.example.com", NOW)
        .unwrap();
    let vals: Vec<_> = m.iter().map(|m| m.ioc_value.as_str()).collect();
    assert_eq!(vals, ["Example.COM", "b.example.com"]);
}

#[test]
fn url_normalisation() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let st = s
        .apply(
            &[
                up(ind(
                    "i--u1",
                    1,
                    &[(IocType::Url, "HTTP://Evil.Example:80/Login?a=1#top")],
                )),
                up(ind("i--u2", 1, &[(IocType::Url, "https://evil.example")])),
                up(ind("i--u3", 1, &[(IocType::Url, "evil.example/no-scheme")])),
                up(ind(
                    "i--u4",
                    1,
                    &[(IocType::Url, "https://evil.example:8443/%7euser/a%2fb")],
                )),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(st.skipped_iocs.len(), 1);
    assert_eq!(st.skipped_iocs[0].indicator_id, "i--u3");
    assert_eq!(
        ids(&s, IocType::Url, "http://evil.example/Login?a=1"),
        ["i--u1"]
    );
    assert_eq!(
        ids(&s, IocType::Url, "http://EVIL.example/Login?a=1#other"),
        ["i--u1"]
    );
    assert!(ids(&s, IocType::Url, "http://evil.example/login?a=1").is_empty());
    assert!(ids(&s, IocType::Url, "http://evil.example/Login?a=2").is_empty());
    assert!(ids(&s, IocType::Url, "https://evil.example/Login?a=1").is_empty());
    assert!(ids(&s, IocType::Url, "http://evil.example:8080/Login?a=1").is_empty());
    assert_eq!(
        ids(&s, IocType::Url, "https://evil.example:443/"),
        ["i--u2"]
    );
    assert!(ids(&s, IocType::Url, "https://evil.example/x").is_empty());
    assert_eq!(
        ids(&s, IocType::Url, "https://evil.example:8443/~user/a%2Fb"),
        ["i--u4"]
    );
    assert!(ids(&s, IocType::Url, "https://evil.example:8443/~user/a/b").is_empty());
    assert!(ids(&s, IocType::Url, "evil.example/no-scheme").is_empty());
}

#[test]
fn emails_and_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let sha1 = "AbCdEf0123456789abcdef0123456789ABCDEF01";
    let st = s
        .apply(
            &[
                up(ind("i--mail", 1, &[(IocType::Email, "Phish@Evil.Example")])),
                up(ind("i--sha1", 1, &[(IocType::Sha1, sha1)])),
                up(ind("i--badhash", 1, &[(IocType::Sha256, "abc")])),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(st.skipped_iocs.len(), 1);
    assert_eq!(ids(&s, IocType::Email, "phish@evil.example"), ["i--mail"]);
    assert!(ids(&s, IocType::Email, "xphish@evil.example").is_empty());
    assert!(ids(&s, IocType::Email, "phish@evil.example.org").is_empty());
    assert_eq!(ids(&s, IocType::Sha1, &sha1.to_lowercase()), ["i--sha1"]);
    // A value of another algorithm never matches (different length, different key space).
    assert!(ids(&s, IocType::Md5, &sha1[..32]).is_empty());
    assert!(ids(&s, IocType::Sha256, "abc").is_empty());
}

#[test]
fn invalid_ids_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let st = s
        .apply(
            &[
                up(ind("", 1, &[(IocType::Domain, "a.example")])),
                up(ind("indicator-- x", 1, &[(IocType::Domain, "a.example")])),
                up(ind(&"x".repeat(513), 1, &[(IocType::Domain, "a.example")])),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(st.rejected.len(), 3);
    assert_eq!(s.count(), 0);
    assert!(ids(&s, IocType::Domain, "a.example").is_empty());
}

#[test]
fn restart_keeps_data_and_offsets() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(&dir);
        assert!(s.offsets().unwrap().is_empty());
        s.apply(
            &[
                up(ind("i--a", 1, &[(IocType::Ipv4, "198.51.100.0/24")])),
                up(ind("i--b", 1, &[(IocType::Ipv6, "2001:db8::/48")])),
                up(ind("i--c", 1, &[(IocType::Domain, "example.net")])),
            ],
            &[(0, 100), (2, 7), (-1, 3)],
        )
        .unwrap();
        s.apply(&[del("i--c")], &[(0, 101)]).unwrap();
    }
    let s = open(&dir);
    assert_eq!(s.count(), 2);
    s.verify().unwrap();
    assert_eq!(
        s.offsets().unwrap(),
        BTreeMap::from([(-1, 3), (0, 101), (2, 7)])
    );
    // The prefix lengths in use are found again on open.
    assert_eq!(ids(&s, IocType::Ipv4, "198.51.100.9"), ["i--a"]);
    assert_eq!(ids(&s, IocType::Ipv6, "2001:db8:0:1::1"), ["i--b"]);
    assert!(ids(&s, IocType::Domain, "example.net").is_empty());
    s.compact().unwrap();
    assert_eq!(ids(&s, IocType::Ipv4, "198.51.100.9"), ["i--a"]);
    drop(s);
    // A second store on the same directory is refused while one is open.
    let s = open(&dir);
    assert!(IndicatorStore::open(dir.path(), StoreOptions::default()).is_err());
    drop(s);
}

#[test]
fn corrupt_bytes_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(&dir);
        s.apply(
            &[up(ind("i--a", 1, &[(IocType::Domain, "a.example")]))],
            &[],
        )
        .unwrap();
    }
    {
        let cfs = ["by_ioc", "by_id", "cidr", "meta"];
        let mut o = rocksdb::Options::default();
        o.create_if_missing(false);
        let db = rocksdb::DB::open_cf(&o, dir.path(), cfs).unwrap();
        db.put_cf(db.cf_handle("by_id").unwrap(), b"i--a", [1u8, 2, 3])
            .unwrap();
    }
    let s = open(&dir);
    let err = s.lookup(IocType::Domain, "a.example", NOW).unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { cf: "by_id", .. }),
        "{err}"
    );
    let err = s
        .apply(
            &[up(ind("i--a", 2, &[(IocType::Domain, "b.example")]))],
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    drop(s);
    {
        let cfs = ["by_ioc", "by_id", "cidr", "meta"];
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), cfs).unwrap();
        db.put_cf(
            db.cf_handle("meta").unwrap(),
            b"format",
            99u32.to_le_bytes(),
        )
        .unwrap();
    }
    let err = IndicatorStore::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::Format { found: 99, .. }), "{err}");
    IndicatorStore::destroy(dir.path()).unwrap();
    let s = open(&dir);
    assert_eq!(s.count(), 0);
}

#[test]
fn match_event_fields_order_dedup_and_validity() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let h = |c: char, n| c.to_string().repeat(n);
    let mut bad = ind(
        "indicator--bad-meta",
        1,
        &[(IocType::Domain, "meta.example")],
    );
    bad.confidence = Some(150);
    bad.tlp = Some("TLP:PURPLE".into());
    bad.provider = " ".into();
    bad.valid_until_ms = Some(i64::MAX);
    let mut amber = ind("indicator--tlp", 1, &[(IocType::Domain, "tlp.example")]);
    amber.tlp = Some("TLP:AMBER+STRICT".into());
    s.apply(
        &[
            up(ind(
                "indicator--net",
                1,
                &[(IocType::Ipv4, "203.0.113.0/24")],
            )),
            up(ind(
                "indicator--dom",
                1,
                &[(IocType::Domain, "evil.example")],
            )),
            up(ind(
                "indicator--url",
                1,
                &[(IocType::Url, "http://evil.example/x")],
            )),
            up(ind("indicator--md5", 1, &[(IocType::Md5, &h('a', 32))])),
            up(ind("indicator--sha1", 1, &[(IocType::Sha1, &h('b', 40))])),
            up(ind(
                "indicator--sha256",
                1,
                &[(IocType::Sha256, &h('c', 64))],
            )),
            up(ind(
                "indicator--mail",
                1,
                &[(IocType::Email, "bad@evil.example")],
            )),
            up(ind("indicator--v6", 1, &[(IocType::Ipv6, "2001:db8::/32")])),
            up(bad),
            up(amber),
        ],
        &[],
    )
    .unwrap();
    let mut e = base_event("e");
    e.network = Some(Network {
        src_ip: Some("192.0.2.1".into()),
        dst_ip: Some("203.0.113.7".into()),
        src_hostname: Some("ws1.corp.example".into()),
        dst_hostname: Some("cdn.evil.example".into()),
        ..Default::default()
    });
    e.host = Some(Host {
        hostname: "h".into(),
        ip: vec!["203.0.113.8".into(), "10.0.0.1".into()],
        ..Default::default()
    });
    e.dns = Some(Dns {
        query: "www.evil.example".into(),
        answers: vec![
            DnsAnswer {
                data: "203.0.113.50".into(),
                r#type: Some("A".into()),
                ttl: None,
            },
            DnsAnswer {
                data: "203.0.113.51".into(),
                r#type: Some("A".into()),
                ttl: None,
            },
            DnsAnswer {
                data: "2001:db8::1".into(),
                r#type: None,
                ttl: None,
            },
            DnsAnswer {
                data: "meta.example".into(),
                r#type: Some("CNAME".into()),
                ttl: None,
            },
            DnsAnswer {
                data: "evil.example".into(),
                r#type: Some("TXT".into()),
                ttl: None,
            },
        ],
        ..Default::default()
    });
    e.http = Some(Http {
        url: "HTTP://Evil.Example:80/x#frag".into(),
        ..Default::default()
    });
    e.file = Some(File {
        path: "/tmp/f".into(),
        md5: Some(h('A', 32)),
        sha1: Some(h('b', 40)),
        sha256: Some(h('d', 64)),
        ..Default::default()
    });
    e.process = Some(Process {
        sha256: Some(h('c', 64)),
        ..Default::default()
    });
    e.email = Some(Email {
        from: "Bad@Evil.Example".into(),
        to: vec!["alice@corp.example".into(), "bad@evil.example".into()],
        attachments: vec![Attachment {
            name: "a".into(),
            sha256: Some(h('c', 64)),
            ..Default::default()
        }],
        ..Default::default()
    });
    e.user = Some(User {
        name: "u".into(),
        email: Some("someone@tlp.example".into()),
        ..Default::default()
    });
    let got = s.match_event(&e, NOW).unwrap();
    let (ha, hb, hc) = (h('a', 32), h('b', 40), h('c', 64));
    let rows: Vec<(&str, &str, &str, &str)> = got
        .iter()
        .map(|x| {
            (
                x.matched_field.as_str(),
                x.indicator_id.as_str(),
                x.ioc_type.as_str(),
                x.ioc_value.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "network.dst_ip",
                "indicator--net",
                "ipv4-addr",
                "203.0.113.0/24"
            ),
            ("host.ip", "indicator--net", "ipv4-addr", "203.0.113.0/24"),
            (
                "network.dst_hostname",
                "indicator--dom",
                "domain-name",
                "evil.example"
            ),
            ("dns.query", "indicator--dom", "domain-name", "evil.example"),
            (
                "dns.answers.data",
                "indicator--bad-meta",
                "domain-name",
                "meta.example"
            ),
            (
                "dns.answers.data",
                "indicator--net",
                "ipv4-addr",
                "203.0.113.0/24"
            ),
            (
                "dns.answers.data",
                "indicator--v6",
                "ipv6-addr",
                "2001:db8::/32"
            ),
            ("http.url", "indicator--dom", "domain-name", "evil.example"),
            ("http.url", "indicator--url", "url", "http://evil.example/x"),
            ("file.md5", "indicator--md5", "file", ha.as_str()),
            ("file.sha1", "indicator--sha1", "file", hb.as_str()),
            ("process.sha256", "indicator--sha256", "file", hc.as_str()),
            (
                "email.attachments.sha256",
                "indicator--sha256",
                "file",
                hc.as_str()
            ),
            (
                "email.from",
                "indicator--mail",
                "email-addr",
                "bad@evil.example"
            ),
            (
                "email.to",
                "indicator--mail",
                "email-addr",
                "bad@evil.example"
            ),
        ]
    );
    // Sanitised metadata: the enriched event passes the producer gate.
    let meta = got
        .iter()
        .find(|x| x.indicator_id == "indicator--bad-meta")
        .unwrap();
    assert_eq!(
        (
            meta.confidence,
            meta.tlp.as_deref(),
            meta.valid_until,
            meta.provider.as_str()
        ),
        (None, None, None, "unknown")
    );
    let net = &got[0];
    assert_eq!(
        (net.confidence, net.tlp.as_deref()),
        (Some(80), Some("amber"))
    );
    let mut enriched = base_event("e2");
    enriched.network = Some(Network {
        dst_ip: Some("203.0.113.7".into()),
        ..Default::default()
    });
    enriched.category = processors::event::EventCategory::Network;
    enriched.enrichments = got.clone();
    enriched.validate().unwrap();
    // Deterministic.
    assert_eq!(s.match_event(&e, NOW).unwrap(), got);
    // The user e-mail only matches an e-mail IOC, not the domain tlp.example.
    assert!(!rows.iter().any(|r| r.0 == "user.email"));
    use processors::intel::store::normalize_tlp;
    assert_eq!(
        normalize_tlp("TLP:AMBER+STRICT").as_deref(),
        Some("amber+strict")
    );
    assert_eq!(normalize_tlp(" Red ").as_deref(), Some("red"));
    assert_eq!(normalize_tlp("TLP:PURPLE"), None);
}

// ---------------------------------------------------------------------------------------------
// Deterministic pseudo-random generation.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------------------------
// Precision / recall.

/// Where a planted value goes in an event.
#[derive(Clone, Copy, Debug)]
enum Slot {
    SrcIp,
    DstIp,
    HostIp,
    DnsQuery,
    DnsAnswer,
    DstHostname,
    Url,
    UrlHost,
    Md5,
    Sha1,
    FileSha256,
    ProcessSha256,
    AttachmentSha256,
    EmailFrom,
    EmailTo,
}

/// A value to put in an event, and the indicator it must match (None: a decoy that must not
/// match anything).
struct Plant {
    slot: Slot,
    value: String,
    indicator: Option<String>,
}

fn put(e: &mut SecurityEvent, slot: Slot, value: &str) {
    let v = value.to_owned();
    match slot {
        Slot::SrcIp => e.network.get_or_insert_with(Default::default).src_ip = Some(v),
        Slot::DstIp => e.network.get_or_insert_with(Default::default).dst_ip = Some(v),
        Slot::DstHostname => e.network.get_or_insert_with(Default::default).dst_hostname = Some(v),
        Slot::HostIp => e
            .host
            .get_or_insert_with(|| Host {
                hostname: "h".into(),
                ..Default::default()
            })
            .ip
            .push(v),
        Slot::DnsQuery => e.dns.get_or_insert_with(Default::default).query = v,
        Slot::DnsAnswer => e
            .dns
            .get_or_insert_with(Default::default)
            .answers
            .push(DnsAnswer {
                data: v,
                r#type: None,
                ttl: None,
            }),
        Slot::Url => e.http.get_or_insert_with(Default::default).url = v,
        Slot::UrlHost => {
            e.http.get_or_insert_with(Default::default).url = format!("https://{v}/index.html")
        }
        Slot::Md5 => e.file.get_or_insert_with(Default::default).md5 = Some(v),
        Slot::Sha1 => e.file.get_or_insert_with(Default::default).sha1 = Some(v),
        Slot::FileSha256 => e.file.get_or_insert_with(Default::default).sha256 = Some(v),
        Slot::ProcessSha256 => e.process.get_or_insert_with(Default::default).sha256 = Some(v),
        Slot::AttachmentSha256 => e
            .email
            .get_or_insert_with(Default::default)
            .attachments
            .push(Attachment {
                name: "a.doc".into(),
                sha256: Some(v),
                ..Default::default()
            }),
        Slot::EmailFrom => e.email.get_or_insert_with(Default::default).from = v,
        Slot::EmailTo => e.email.get_or_insert_with(Default::default).to.push(v),
    }
}

/// The generated intel: 1,000 indicators of every type, some expired, deleted or modified,
/// and for each a value that must match it and decoys that must not match anything.
struct Intel {
    changes: Vec<Vec<Change>>,
    /// (slot, value, indicator id) that must match.
    hits: Vec<(Slot, String, String)>,
    /// (slot, value) that must not match.
    decoys: Vec<(Slot, String)>,
}

fn generate_intel(rng: &mut Rng) -> Intel {
    let mut first = Vec::new();
    let mut second = Vec::new();
    let mut stale = Vec::new();
    let mut hits = Vec::new();
    let mut decoys = Vec::new();
    let mut hashes = BTreeSet::new();
    let mut fresh_hash = |rng: &mut Rng, len: usize| loop {
        let h = rng.hex(len);
        if hashes.insert(h.clone()) {
            return h;
        }
    };
    let ip_slots = [Slot::SrcIp, Slot::DstIp, Slot::HostIp, Slot::DnsAnswer];
    let dom_slots = [Slot::DnsQuery, Slot::DstHostname, Slot::UrlHost];
    for i in 0..1000u32 {
        let id = format!("indicator--{i:08x}-0000-4000-8000-000000000000");
        let (a, b) = (i / 256, i % 256);
        // (IOC type, stored value, values that must match, decoys that must not, slots)
        let (t, stored, good, bad, slots): (IocType, String, Vec<String>, Vec<String>, &[Slot]) =
            match i % 12 {
                0 | 1 => (
                    IocType::Ipv4,
                    format!("100.64.{a}.{b}"),
                    vec![format!("100.64.{a}.{b}")],
                    vec![format!("100.63.{a}.{b}")],
                    &ip_slots,
                ),
                2 => (
                    IocType::Ipv4,
                    format!("100.65.{}.0/24", i / 12),
                    vec![format!("100.65.{}.{}", i / 12, rng.below(256))],
                    vec![format!("100.66.{}.{}", i / 12, rng.below(256))],
                    &ip_slots,
                ),
                3 => (
                    // /28 blocks at even multiples of 16; the next block is a decoy.
                    IocType::Ipv4,
                    format!("100.67.{}.{}/28", i / 12, 32 * (i % 8)),
                    vec![format!("100.67.{}.{}", i / 12, 32 * (i % 8) + 15)],
                    vec![format!("100.67.{}.{}", i / 12, 32 * (i % 8) + 16)],
                    &ip_slots,
                ),
                4 => (
                    IocType::Ipv6,
                    format!("2001:db8:1::{i:x}"),
                    vec![format!("2001:DB8:1:0::{i:X}")],
                    vec![format!("2001:db8:1::1:{i:x}")],
                    &ip_slots,
                ),
                5 => (
                    IocType::Ipv6,
                    format!("2001:db8:{:x}::/48", 0x100 + i),
                    vec![format!(
                        "2001:db8:{:x}:{:x}::1",
                        0x100 + i,
                        rng.below(65536)
                    )],
                    vec![format!("2001:db8:{:x}:ffff::1", 0x2000 + i)],
                    &ip_slots,
                ),
                6 | 7 => (
                    IocType::Domain,
                    format!("evil{i}.test"),
                    vec![format!("evil{i}.test"), format!("www.cdn.Evil{i}.test")],
                    vec![
                        format!("badevil{i}.test"),
                        format!("evil{i}.test.example"),
                        format!("evil{i}x.test"),
                    ],
                    &dom_slots,
                ),
                8 => (
                    IocType::Url,
                    format!("HTTP://Mal{i}.Example.NET:80/path/{i}?q=1#frag"),
                    vec![format!("http://mal{i}.example.net/path/{i}?q=1")],
                    vec![
                        format!("http://mal{i}.example.net/path/{i}?q=2"),
                        format!("https://mal{i}.example.net/path/{i}?q=1"),
                        format!("http://mal{i}.example.net/path/{i}/?q=1"),
                    ],
                    &[Slot::Url],
                ),
                9 => (
                    IocType::Email,
                    format!("Phish{i}@Bad-Mail.test"),
                    vec![format!("phish{i}@bad-mail.test")],
                    vec![
                        format!("xphish{i}@bad-mail.test"),
                        format!("phish{i}@bad-mail.testx"),
                    ],
                    &[Slot::EmailFrom, Slot::EmailTo],
                ),
                10 => {
                    let h = fresh_hash(rng, 64);
                    let decoy = fresh_hash(rng, 64);
                    (
                        IocType::Sha256,
                        h.to_uppercase(),
                        vec![h],
                        vec![decoy],
                        &[
                            Slot::FileSha256,
                            Slot::ProcessSha256,
                            Slot::AttachmentSha256,
                        ],
                    )
                }
                _ => {
                    if i % 2 == 0 {
                        let h = fresh_hash(rng, 32);
                        (
                            IocType::Md5,
                            h.clone(),
                            vec![h],
                            vec![fresh_hash(rng, 32)],
                            &[Slot::Md5],
                        )
                    } else {
                        let h = fresh_hash(rng, 40);
                        (
                            IocType::Sha1,
                            h.clone(),
                            vec![h],
                            vec![fresh_hash(rng, 40)],
                            &[Slot::Sha1],
                        )
                    }
                }
            };
        let mut indicator = StoredIndicator {
            id: id.clone(),
            modified_ms: 1_000,
            iocs: vec![(t, stored.clone())],
            valid_until_ms: None,
            confidence: Some((i % 101) as i32),
            tlp: Some("green".into()),
            provider: "gen".into(),
            name: None,
        };
        let expired = i % 50 == 7;
        let deleted = i % 40 == 3;
        let modified = i % 30 == 11 && !deleted;
        if expired {
            indicator.valid_until_ms = Some(NOW - 1);
        } else if i % 5 == 0 {
            indicator.valid_until_ms = Some(NOW + 86_400_000);
        }
        first.push(up(indicator.clone()));
        if i < 200 && !deleted {
            // A stale replay of an older version, applied after everything: ignored. (Never for
            // a deleted id: the store keeps no tombstones, and a compacted topic never carries
            // an older version after a tombstone.)
            let mut old = indicator.clone();
            old.modified_ms = 500;
            old.iocs = vec![(IocType::Domain, "stale.evil.test".into())];
            stale.push(up(old));
        }
        let mut good_values = good;
        let mut bad_values = bad;
        if deleted {
            second.push(del(&id));
            bad_values.append(&mut good_values);
        } else if modified {
            // The new version has another IOC; the old values become decoys.
            let new_value = format!("moved{i}.evil.test");
            indicator.modified_ms = 2_000;
            indicator.iocs = vec![(IocType::Domain, new_value.clone())];
            second.push(up(indicator));
            bad_values.append(&mut good_values);
            good_values.push(format!("a.{new_value}"));
            hits.push((Slot::DnsQuery, format!("a.{new_value}"), id.clone()));
            decoys.push((Slot::DnsQuery, format!("xmoved{i}.evil.test")));
            decoys.push((Slot::DnsQuery, stored.clone()));
        } else if expired {
            bad_values.append(&mut good_values);
        }
        for g in good_values.iter().filter(|g| !g.starts_with("a.moved")) {
            hits.push((*rng.pick(slots), g.clone(), id.clone()));
        }
        for d in bad_values {
            decoys.push((*rng.pick(slots), d));
        }
    }
    decoys.push((Slot::DnsQuery, "stale.evil.test".into()));
    Intel {
        changes: vec![first, second, stale],
        hits,
        decoys,
    }
}

/// A background value for a slot, from ranges no indicator uses.
fn background(rng: &mut Rng, slot: Slot) -> String {
    match slot {
        Slot::SrcIp | Slot::DstIp | Slot::HostIp | Slot::DnsAnswer => {
            if rng.chance(80) {
                format!(
                    "10.{}.{}.{}",
                    rng.below(256),
                    rng.below(256),
                    rng.below(256)
                )
            } else {
                format!("fd00::{:x}", rng.below(1 << 16))
            }
        }
        Slot::DnsQuery | Slot::DstHostname | Slot::UrlHost => {
            format!("host{}.corp{}.example", rng.below(10_000), rng.below(10))
        }
        Slot::Url => format!(
            "https://www.benign{}.example/page/{}",
            rng.below(100),
            rng.below(1000)
        ),
        Slot::Md5 => rng.hex(32),
        Slot::Sha1 => rng.hex(40),
        Slot::FileSha256 | Slot::ProcessSha256 | Slot::AttachmentSha256 => rng.hex(64),
        Slot::EmailFrom | Slot::EmailTo => format!("user{}@corp.example", rng.below(1000)),
    }
}

/// The event field a slot writes (list fields get a distinct name per plant, never equal).
fn field_of(slot: Slot) -> &'static str {
    match slot {
        Slot::Url | Slot::UrlHost => "http.url",
        Slot::SrcIp => "network.src_ip",
        Slot::DstIp => "network.dst_ip",
        Slot::DstHostname => "network.dst_hostname",
        Slot::DnsQuery => "dns.query",
        Slot::Md5 => "file.md5",
        Slot::Sha1 => "file.sha1",
        Slot::FileSha256 => "file.sha256",
        Slot::ProcessSha256 => "process.sha256",
        Slot::EmailFrom => "email.from",
        Slot::HostIp | Slot::DnsAnswer | Slot::AttachmentSha256 | Slot::EmailTo => "",
    }
}

const ALL_SLOTS: [Slot; 15] = [
    Slot::SrcIp,
    Slot::DstIp,
    Slot::HostIp,
    Slot::DnsQuery,
    Slot::DnsAnswer,
    Slot::DstHostname,
    Slot::Url,
    Slot::UrlHost,
    Slot::Md5,
    Slot::Sha1,
    Slot::FileSha256,
    Slot::ProcessSha256,
    Slot::AttachmentSha256,
    Slot::EmailFrom,
    Slot::EmailTo,
];

#[test]
fn precision_and_recall_1000_indicators_50000_events() {
    let mut rng = Rng(0x5ec_f10e);
    let intel = generate_intel(&mut rng);
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    let mut offset = 0;
    for batch in &intel.changes {
        offset += batch.len() as i64;
        s.apply(batch, &[(0, offset)]).unwrap();
    }
    let live = 1000 - (0..1000).filter(|i| i % 40 == 3).count();
    assert_eq!(s.count(), live as u64);
    let st = s.verify().unwrap();
    assert_eq!(st.indicators, live as u64);
    assert_eq!(st.postings, live as u64);

    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    let mut planted_hits = 0;
    let mut planted_decoys = 0;
    let mut got: BTreeSet<(String, String)> = BTreeSet::new();
    for n in 0..50_000u32 {
        let event_id = format!("event-{n:05}");
        let mut e = base_event(&event_id);
        // Background values in a few random slots.
        for _ in 0..1 + rng.below(4) {
            let slot = *rng.pick(&ALL_SLOTS);
            let v = background(&mut rng, slot);
            put(&mut e, slot, &v);
        }
        // About 8% of the events carry one or two true matches, 8% a decoy.
        let mut plants: Vec<Plant> = (0..2)
            .filter_map(|k| {
                if rng.chance(if k == 0 { 8 } else { 2 }) {
                    let (slot, value, id) =
                        &intel.hits[rng.below(intel.hits.len() as u64) as usize];
                    Some(Plant {
                        slot: *slot,
                        value: value.clone(),
                        indicator: Some(id.clone()),
                    })
                } else if rng.chance(8) {
                    let (slot, value) =
                        &intel.decoys[rng.below(intel.decoys.len() as u64) as usize];
                    Some(Plant {
                        slot: *slot,
                        value: value.clone(),
                        indicator: None,
                    })
                } else {
                    None
                }
            })
            .collect();
        // One value per single-valued field: a second plant may not overwrite the first.
        if plants.len() == 2
            && !field_of(plants[0].slot).is_empty()
            && field_of(plants[0].slot) == field_of(plants[1].slot)
        {
            plants.pop();
        }
        for p in &plants {
            put(&mut e, p.slot, &p.value);
            match &p.indicator {
                Some(id) => {
                    planted_hits += 1;
                    expected.insert((event_id.clone(), id.clone()));
                }
                None => planted_decoys += 1,
            }
        }
        for m in s.match_event(&e, NOW).unwrap() {
            got.insert((event_id.clone(), m.indicator_id));
        }
    }
    let true_pos = got.intersection(&expected).count();
    let precision = true_pos as f64 / got.len().max(1) as f64;
    let recall = true_pos as f64 / expected.len().max(1) as f64;
    let false_pos: Vec<_> = got.difference(&expected).take(10).collect();
    let false_neg: Vec<_> = expected.difference(&got).take(10).collect();
    println!(
        "planted {planted_hits} matches ({} distinct pairs) and {planted_decoys} decoys in 50000 events: precision {precision}, recall {recall}",
        expected.len()
    );
    assert!(
        expected.len() > 3000,
        "too few planted matches: {}",
        expected.len()
    );
    assert!(planted_decoys > 3000);
    assert!(false_pos.is_empty(), "false positives: {false_pos:?}");
    assert!(false_neg.is_empty(), "false negatives: {false_neg:?}");
    assert_eq!(got, expected);

    // The same after a restart.
    drop(s);
    let s = open(&dir);
    assert_eq!(s.offsets().unwrap(), BTreeMap::from([(0, offset)]));
    for (slot, value, id) in intel.hits.iter().take(300) {
        let mut e = base_event("again");
        put(&mut e, *slot, value);
        let ids: Vec<_> = s
            .match_event(&e, NOW)
            .unwrap()
            .into_iter()
            .map(|m| m.indicator_id)
            .collect();
        assert_eq!(ids, std::slice::from_ref(id), "{slot:?} {value}");
    }
}

// ---------------------------------------------------------------------------------------------
// Randomised comparison against a brute-force model.

/// The obvious (slow) matcher: every live indicator, every IOC, compared directly.
fn model_lookup(
    model: &BTreeMap<String, StoredIndicator>,
    t: IocType,
    observed: &str,
    now: i64,
) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for ind in model.values() {
        if ind.valid_until_ms.is_some_and(|u| now >= u) {
            continue;
        }
        // One match per indicator and distinct IOC (the first spelling).
        let mut seen = BTreeSet::new();
        for (it, v) in &ind.iocs {
            if !seen.insert(canon(*it, v)) {
                continue;
            }
            let hit = match (t, it) {
                (IocType::Ipv4 | IocType::Ipv6, IocType::Ipv4 | IocType::Ipv6) => {
                    ip_contains(v, observed)
                }
                (IocType::Domain, IocType::Domain) => {
                    let (v, o) = (v.to_lowercase(), observed.to_lowercase());
                    !v.contains('*')
                        && (o == v || (v.contains('.') && o.ends_with(&format!(".{v}"))))
                }
                (a, b) if a == *b => v.to_lowercase() == observed.to_lowercase(),
                _ => false,
            };
            if hit {
                out.insert((ind.id.clone(), v.clone()));
            }
        }
    }
    out
}

/// The IOC in a canonical text form: masked network and length for IPs, lower-case otherwise.
fn canon(t: IocType, v: &str) -> String {
    match t {
        IocType::Ipv4 | IocType::Ipv6 => {
            let (addr, len) = match v.split_once('/') {
                Some((a, l)) => (a, Some(l.parse::<u32>().unwrap())),
                None => (v, None),
            };
            match addr.parse::<IpAddr>().unwrap() {
                IpAddr::V4(a) => {
                    let len = len.unwrap_or(32);
                    let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    format!("{}/{len}", std::net::Ipv4Addr::from(u32::from(a) & m))
                }
                IpAddr::V6(a) => {
                    let len = len.unwrap_or(128);
                    let m = if len == 0 {
                        0
                    } else {
                        u128::MAX << (128 - len)
                    };
                    format!("{}/{len}", std::net::Ipv6Addr::from(u128::from(a) & m))
                }
            }
        }
        _ => format!("{t}:{}", v.to_lowercase()),
    }
}

/// Whether the IOC `ioc` (address or CIDR, min prefix /8 v4, /16 v6) contains `observed`.
fn ip_contains(ioc: &str, observed: &str) -> bool {
    let (addr, len) = match ioc.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u32>().unwrap())),
        None => (ioc, None),
    };
    let net: IpAddr = addr.parse().unwrap();
    let obs: IpAddr = observed.parse().unwrap();
    match (net, obs) {
        (IpAddr::V4(n), IpAddr::V4(o)) => {
            let len = len.unwrap_or(32);
            if len < 8 {
                return false;
            }
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(n) & m == u32::from(o) & m
        }
        (IpAddr::V6(n), IpAddr::V6(o)) => {
            let len = len.unwrap_or(128);
            if len < 16 {
                return false;
            }
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(n) & m == u128::from(o) & m
        }
        _ => false,
    }
}

fn random_ioc(rng: &mut Rng) -> (IocType, String) {
    // Small pools so that indicators share values and networks nest.
    match rng.below(6) {
        0 => {
            let len = *rng.pick(&[8u32, 12, 16, 20, 24, 28, 31, 32]);
            let addr = format!("10.{}.{}.{}", rng.below(3), rng.below(4), rng.below(8) * 16);
            if len == 32 && rng.chance(50) {
                (IocType::Ipv4, addr)
            } else {
                (IocType::Ipv4, format!("{addr}/{len}"))
            }
        }
        1 => {
            let len = *rng.pick(&[16u32, 32, 48, 64, 120, 128]);
            (
                IocType::Ipv6,
                format!("2001:db8:{:x}::{:x}/{len}", rng.below(3), rng.below(4) * 64),
            )
        }
        2 | 3 => {
            let labels = ["a", "b", "evil", "x-y"];
            let depth = 1 + rng.below(3);
            let mut d = String::from(*rng.pick(&["example", "test", "corp"]));
            for _ in 0..depth {
                d = format!("{}.{d}", rng.pick(&labels));
            }
            if rng.chance(10) {
                d = d.to_uppercase();
            }
            (IocType::Domain, d)
        }
        4 => (IocType::Md5, rng.hex(1).repeat(32)),
        _ => (
            IocType::Email,
            format!(
                "{}@{}.example",
                rng.pick(&["a", "b"]),
                rng.pick(&["x", "y"])
            ),
        ),
    }
}

fn random_observed(rng: &mut Rng) -> (IocType, String) {
    match rng.below(5) {
        0 => (
            IocType::Ipv4,
            format!("10.{}.{}.{}", rng.below(3), rng.below(4), rng.below(256)),
        ),
        1 => (
            IocType::Ipv6,
            format!("2001:db8:{:x}::{:x}", rng.below(3), rng.below(256)),
        ),
        2 => {
            let labels = ["a", "b", "evil", "x-y", "c"];
            let mut d = String::from(*rng.pick(&["example", "test", "corp"]));
            for _ in 0..rng.below(5) {
                d = format!("{}.{d}", rng.pick(&labels));
            }
            (IocType::Domain, d)
        }
        3 => (IocType::Md5, rng.hex(1).repeat(32)),
        _ => (
            IocType::Email,
            format!(
                "{}@{}.example",
                rng.pick(&["a", "b"]),
                rng.pick(&["x", "y"])
            ),
        ),
    }
}

#[test]
fn randomised_against_brute_force_model() {
    for seed in 0..6u64 {
        let mut rng = Rng(seed * 7919 + 1);
        let dir = tempfile::tempdir().unwrap();
        let mut s = Some(open(&dir));
        let mut model: BTreeMap<String, StoredIndicator> = BTreeMap::new();
        let mut offsets = BTreeMap::new();
        for round in 0..40 {
            let store = s.as_ref().unwrap();
            let mut batch = Vec::new();
            for _ in 0..rng.below(30) {
                let id = format!("indicator--{}", rng.below(60));
                if rng.chance(20) {
                    batch.push(del(&id));
                    model.remove(&id);
                } else {
                    let modified = rng.below(20) as i64;
                    let iocs: Vec<_> = (0..rng.below(4)).map(|_| random_ioc(&mut rng)).collect();
                    let valid_until_ms = match rng.below(4) {
                        0 => Some(NOW - 1),
                        1 => Some(NOW + 1),
                        _ => None,
                    };
                    let i = StoredIndicator {
                        id: id.clone(),
                        modified_ms: modified,
                        iocs,
                        valid_until_ms,
                        confidence: None,
                        tlp: None,
                        provider: "p".into(),
                        name: None,
                    };
                    let keep = model.get(&id).is_none_or(|old| old.modified_ms <= modified);
                    if keep {
                        model.insert(id.clone(), i.clone());
                    }
                    batch.push(up(i));
                }
            }
            let p = rng.below(3) as i32;
            offsets.insert(p, round as i64);
            store.apply(&batch, &[(p, round as i64)]).unwrap();
            assert_eq!(
                store.count(),
                model.len() as u64,
                "seed {seed} round {round}"
            );
            let st = store.verify().unwrap();
            let distinct: BTreeSet<String> = model
                .values()
                .flat_map(|i| i.iocs.iter().map(|(t, v)| canon(*t, v)))
                .collect();
            assert_eq!(
                st.by_ioc_keys + st.cidr_keys,
                distinct.len() as u64,
                "seed {seed} round {round}"
            );
            for _ in 0..200 {
                let (t, v) = random_observed(&mut rng);
                let now = NOW + rng.below(3) as i64 - 1;
                let got: BTreeSet<(String, String)> = store
                    .lookup(t, &v, now)
                    .unwrap()
                    .into_iter()
                    .map(|m: Match| (m.indicator_id, m.ioc_value))
                    .collect();
                let want = model_lookup(&model, t, &v, now);
                assert_eq!(got, want, "seed {seed} round {round}: {t} {v} at {now}");
            }
            if rng.chance(15) {
                // Restart.
                drop(s.take());
                s = Some(open(&dir));
                assert_eq!(s.as_ref().unwrap().offsets().unwrap(), offsets);
            }
        }
        for (id, ind) in &model {
            assert_eq!(s.as_ref().unwrap().get(id).unwrap().as_ref(), Some(ind));
        }
    }
}

#[test]
fn concurrent_lookups_during_writes() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(open(&dir));
    s.apply(
        &[up(ind("i--base", 1, &[(IocType::Ipv4, "10.0.0.0/8")]))],
        &[],
    )
    .unwrap();
    let reader = {
        let s = s.clone();
        std::thread::spawn(move || {
            for n in 0..20_000u32 {
                let ip = format!("10.{}.{}.1", n % 200, n % 7);
                let ids: Vec<_> = s
                    .lookup(IocType::Ipv4, &ip, NOW)
                    .unwrap()
                    .into_iter()
                    .map(|m| m.indicator_id)
                    .collect();
                assert!(ids.contains(&"i--base".to_owned()), "{ip}: {ids:?}");
            }
        })
    };
    for n in 0..200u32 {
        s.apply(
            &[up(ind(
                &format!("i--{n}"),
                1,
                &[(IocType::Ipv4, &format!("10.{n}.0.0/16"))],
            ))],
            &[(0, i64::from(n))],
        )
        .unwrap();
    }
    reader.join().unwrap();
    // After the writes, every /16 is visible.
    assert_eq!(ids(&s, IocType::Ipv4, "10.150.3.3"), ["i--150", "i--base"]);
    assert_eq!(s.verify().unwrap().cidr_keys, 201);
}
