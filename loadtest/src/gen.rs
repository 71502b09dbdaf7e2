//! The event generator: canonical events shaped like the examples in `schemas/examples/` (one
//! template per category and activity), drawn with a realistic category mix, with unique ids, the
//! production time as event time, varied addresses, and a chosen fraction carrying a value of one
//! of the seeded indicators (planted IOC) so the enrich stage has something to find.
//!
//! Background values never fall into the indicator space (198.18.0.0/15, `*.ioc.loadtest.test`,
//! the generated hashes), so the enrich stage's match count must equal the planted count.

use std::collections::BTreeMap;

use processors::event::{EventError, SecurityEvent};
use processors::intel::indicator::{Indicator, IndicatorSource, Tlp};
use processors::intel::pattern::{AtomicIoc, IocType};

/// One template: an example event, its share of the mix, where an IOC can be planted in it.
struct Template {
    event: SecurityEvent,
    weight: u32,
    slot: Slot,
    label: &'static str,
}

/// Where a planted IOC goes, and so which kind of indicator it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// `network.dst_ip` ← an IPv4 indicator.
    DstIp,
    /// `dns.query` ← a domain indicator.
    DnsQuery,
    /// `http.url` host ← a domain indicator.
    HttpHost,
    /// `file.sha256` ← a SHA-256 indicator.
    FileSha256,
    /// `process.sha256` ← a SHA-256 indicator.
    ProcessSha256,
    /// `email.attachments[0].sha256` ← a SHA-256 indicator.
    AttachmentSha256,
}

/// The examples and their weights (percent of events). Network flows and DNS dominate real
/// telemetry; authentication, process and HTTP follow; alerts are a few percent.
const TEMPLATES: &[(&str, &str, u32)] = &[
    (
        "network",
        include_str!("../../schemas/examples/network_connection_ipv4.json"),
        30,
    ),
    (
        "network",
        include_str!("../../schemas/examples/network_connection_ipv6.json"),
        5,
    ),
    (
        "dns",
        include_str!("../../schemas/examples/dns_query.json"),
        18,
    ),
    (
        "authentication",
        include_str!("../../schemas/examples/authentication_logon_success.json"),
        6,
    ),
    (
        "authentication",
        include_str!("../../schemas/examples/authentication_logon_failure.json"),
        5,
    ),
    (
        "authentication",
        include_str!("../../schemas/examples/authentication_account_switch.json"),
        2,
    ),
    (
        "process",
        include_str!("../../schemas/examples/process_launch.json"),
        10,
    ),
    (
        "http",
        include_str!("../../schemas/examples/http_request.json"),
        10,
    ),
    (
        "file",
        include_str!("../../schemas/examples/file_create.json"),
        6,
    ),
    (
        "email",
        include_str!("../../schemas/examples/email_with_attachment.json"),
        2,
    ),
    (
        "alert",
        include_str!("../../schemas/examples/intrusion_detection_alert.json"),
        3,
    ),
    (
        "alert",
        include_str!("../../schemas/examples/malware_alert.json"),
        1,
    ),
    (
        "alert",
        include_str!("../../schemas/examples/process_alert_enriched.json"),
        2,
    ),
];

/// Why the generator could not be set up or an event not be made.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// A template does not parse as a canonical event.
    #[error("template {index}: {source}")]
    Template {
        /// Position in the template list.
        index: usize,
        /// Why.
        source: EventError,
    },
    /// A generated event does not validate (a generator bug).
    #[error("generated event {seq}: {source}")]
    Event {
        /// Its sequence number.
        seq: u64,
        /// Why.
        source: EventError,
    },
}

/// SplitMix64: small, fast, deterministic for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The IOC of seeded indicator `k`: IPv4, domain and SHA-256 in turn.
pub fn ioc(k: usize) -> (IocType, String) {
    match k % 3 {
        0 => (
            IocType::Ipv4,
            format!("198.{}.{}.{}", 18 + (k >> 16) % 2, (k >> 8) & 255, k & 255),
        ),
        1 => (IocType::Domain, format!("c2-{k}.ioc.loadtest.test")),
        _ => (IocType::Sha256, fake_sha256(k as u64)),
    }
}

/// 64 hex digits determined by `k` (not a real hash: the enrich stage compares text).
fn fake_sha256(k: u64) -> String {
    let mut r = Rng::new(k ^ 0x10c5_7e57_0000_0000);
    (0..4).map(|_| format!("{:016x}", r.next_u64())).collect()
}

/// The STIX id of seeded indicator `k`.
pub fn indicator_id(k: usize) -> String {
    format!("indicator--{:08x}-1e57-4000-8000-{:012x}", k, k)
}

/// Seeded indicator `k`, as the `intel_poll` stage would publish it.
pub fn indicator(k: usize, now_ms: i64) -> Indicator {
    let (ioc_type, value) = ioc(k);
    Indicator {
        id: indicator_id(k),
        modified: now_ms,
        iocs: vec![AtomicIoc { ioc_type, value }],
        name: Some(format!("loadtest indicator {k}")),
        description: None,
        confidence: Some(70),
        indicator_types: vec!["malicious-activity".into()],
        labels: vec![],
        valid_from: now_ms - 86_400_000,
        valid_until: None,
        tlp: Some(Tlp::Green),
        source: IndicatorSource {
            server: "loadtest".into(),
            api_root: "https://intel.loadtest.invalid/api1/".into(),
            collection: "loadtest".into(),
        },
        created_by: None,
        pattern: String::new(),
    }
}

/// One generated event, encoded.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Sequence number (also in the event id).
    pub seq: u64,
    /// The record key (the tenant, as `secflow produce` keys by default).
    pub key: String,
    /// The Avro datum, not yet framed.
    pub datum: Vec<u8>,
    /// The event time set (production time), epoch ms.
    pub event_time: i64,
}

/// The event generator.
pub struct Generator {
    templates: Vec<Template>,
    total_weight: u32,
    rng: Rng,
    run: String,
    ioc_fraction: f64,
    indicators: usize,
    seq: u64,
    /// Events per label.
    pub by_label: BTreeMap<&'static str, u64>,
    /// Events with a planted IOC.
    pub planted: u64,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("run", &self.run)
            .field("seq", &self.seq)
            .field("planted", &self.planted)
            .finish_non_exhaustive()
    }
}

/// The event id of event `seq` of `run`.
pub fn event_id(run: &str, seq: u64) -> String {
    format!("{}{seq}", id_prefix(run))
}

/// What every event id of `run` starts with.
pub fn id_prefix(run: &str) -> String {
    format!("lt-{run}-")
}

/// The sequence number in an event id of `run` (`None` for other ids).
pub fn seq_of(run_prefix: &str, id: &str) -> Option<u64> {
    id.strip_prefix(run_prefix)?.parse().ok()
}

impl Generator {
    /// A generator for run `run`: `ioc_fraction` of the events (0–1) carry a value of one of
    /// `indicators` seeded indicators (none when 0).
    pub fn new(
        run: &str,
        seed: u64,
        ioc_fraction: f64,
        indicators: usize,
    ) -> Result<Self, GenError> {
        let mut templates = Vec::with_capacity(TEMPLATES.len());
        for (index, (label, text, weight)) in TEMPLATES.iter().enumerate() {
            let mut event = SecurityEvent::from_json(text)
                .map_err(|source| GenError::Template { index, source })?;
            // Canonical events carry no enrichments: the enrich stage adds them.
            event.enrichments.clear();
            let slot = slot_of(&event);
            templates.push(Template {
                event,
                weight: *weight,
                slot,
                label,
            });
        }
        let total_weight = templates.iter().map(|t| t.weight).sum();
        Ok(Generator {
            templates,
            total_weight,
            rng: Rng::new(seed),
            run: run.to_string(),
            ioc_fraction: ioc_fraction.clamp(0.0, 1.0),
            indicators,
            seq: 0,
            by_label: BTreeMap::new(),
            planted: 0,
        })
    }

    /// The next event, with `now_ms` as its event and observed time, validated and encoded.
    pub fn next_event(&mut self, now_ms: i64) -> Result<Generated, GenError> {
        let (event, _, _) = self.next_canonical(now_ms);
        let seq = self.seq - 1;
        let datum = event
            .to_avro_datum()
            .map_err(|source| GenError::Event { seq, source })?;
        Ok(Generated {
            seq,
            key: event.tenant,
            datum,
            event_time: now_ms,
        })
    }

    /// The next event, not encoded: the event, whether an IOC was planted, its label.
    pub fn next_canonical(&mut self, now_ms: i64) -> (SecurityEvent, bool, &'static str) {
        let seq = self.seq;
        self.seq += 1;
        let mut pick = self.rng.below(u64::from(self.total_weight)) as u32;
        let mut index = 0;
        for (i, t) in self.templates.iter().enumerate() {
            if pick < t.weight {
                index = i;
                break;
            }
            pick -= t.weight;
        }
        let template = &self.templates[index];
        let label = template.label;
        let slot = template.slot;
        let mut e = template.event.clone();
        e.event_id = event_id(&self.run, seq);
        e.event_time = now_ms;
        e.observed_time = now_ms;
        e.tenant = format!("tenant-{:02}", self.rng.below(12));
        let r = self.rng.next_u64();
        if let Some(n) = e.network.as_mut() {
            // Internal clients from a /16 (repeats, as in real traffic); never in 198.18/15.
            if n.src_ip.as_deref().is_some_and(|ip| !ip.contains(':')) {
                n.src_ip = Some(format!("10.20.{}.{}", (r >> 8) & 255, r & 255));
            }
            if n.src_port.is_some() {
                n.src_port = Some(1024 + ((r >> 16) % 60_000) as i32);
            }
        }
        if let Some(p) = e.process.as_mut() {
            if p.pid.is_some() {
                p.pid = Some(100 + ((r >> 32) % 60_000) as i64);
            }
        }
        let planted = self.indicators > 0 && self.rng.unit() < self.ioc_fraction;
        if planted {
            self.plant(&mut e, slot);
            self.planted += 1;
        }
        *self.by_label.entry(label).or_insert(0) += 1;
        (e, planted, label)
    }

    /// Puts the value of a random seeded indicator of the slot's kind into the event.
    fn plant(&mut self, e: &mut SecurityEvent, slot: Slot) {
        let kind = match slot {
            Slot::DstIp => 0,
            Slot::DnsQuery | Slot::HttpHost => 1,
            Slot::FileSha256 | Slot::ProcessSha256 | Slot::AttachmentSha256 => 2,
        };
        // Indicators of each kind are k ≡ kind (mod 3), k < self.indicators.
        let per_kind = self.indicators.saturating_sub(kind).div_ceil(3);
        let k = kind + 3 * self.rng.below(per_kind.max(1) as u64) as usize;
        let (_, value) = ioc(k);
        match slot {
            Slot::DstIp => {
                if let Some(n) = e.network.as_mut() {
                    n.dst_ip = Some(value);
                }
            }
            Slot::DnsQuery => {
                if let Some(d) = e.dns.as_mut() {
                    d.query = value;
                }
            }
            Slot::HttpHost => {
                if let Some(h) = e.http.as_mut() {
                    h.url = format!("http://{value}/dl/{}", e.event_id);
                }
            }
            Slot::FileSha256 => {
                if let Some(f) = e.file.as_mut() {
                    f.sha256 = Some(value);
                }
            }
            Slot::ProcessSha256 => {
                if let Some(p) = e.process.as_mut() {
                    p.sha256 = Some(value);
                }
            }
            Slot::AttachmentSha256 => {
                if let Some(a) = e.email.as_mut().and_then(|m| m.attachments.first_mut()) {
                    a.sha256 = Some(value);
                }
            }
        }
    }
}

/// Where an IOC fits in a template, by category first, then by what the event has.
fn slot_of(e: &SecurityEvent) -> Slot {
    let ipv4_dst = e
        .network
        .as_ref()
        .and_then(|n| n.dst_ip.as_deref())
        .is_some_and(|ip| !ip.contains(':'));
    if e.dns.is_some() {
        Slot::DnsQuery
    } else if e.http.is_some() {
        Slot::HttpHost
    } else if e.email.as_ref().is_some_and(|m| !m.attachments.is_empty()) {
        Slot::AttachmentSha256
    } else if e.file.is_some() {
        Slot::FileSha256
    } else if ipv4_dst {
        Slot::DstIp
    } else if e.process.is_some() {
        Slot::ProcessSha256
    } else {
        // IPv6 flows: an IPv4 destination is still a valid event.
        Slot::DstIp
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_template_makes_valid_events_with_and_without_iocs() {
        for fraction in [0.0, 1.0] {
            let mut g = Generator::new("t", 7, fraction, 300).unwrap();
            for i in 0..2_000 {
                let out = g.next_event(1_700_000_000_000 + i).unwrap();
                let back = SecurityEvent::from_avro_datum(&out.datum).unwrap();
                assert_eq!(back.event_id, event_id("t", out.seq));
                assert_eq!(back.event_time, out.event_time);
            }
            assert_eq!(g.by_label.len(), 8, "{:?}", g.by_label);
            assert_eq!(g.planted, if fraction == 1.0 { 2_000 } else { 0 });
        }
    }

    #[test]
    fn planted_values_are_seeded_iocs_and_background_is_not() {
        let mut g = Generator::new("t", 1, 0.5, 30).unwrap();
        let iocs: std::collections::BTreeSet<String> = (0..30).map(|k| ioc(k).1).collect();
        for i in 0..3_000 {
            let (e, planted, _) = g.next_canonical(i);
            let text = e.to_json().to_string();
            let found = iocs.iter().any(|v| text.contains(v.as_str()));
            assert_eq!(found, planted, "{text}");
        }
        assert!((1_300..1_700).contains(&g.planted), "{}", g.planted);
    }

    #[test]
    fn mix_follows_the_weights() {
        let mut g = Generator::new("t", 3, 0.0, 0).unwrap();
        for i in 0..20_000 {
            g.next_canonical(i);
        }
        let share = |l: &str| g.by_label[l] as f64 / 20_000.0;
        assert!((0.32..0.38).contains(&share("network")), "{:?}", g.by_label);
        assert!((0.16..0.20).contains(&share("dns")), "{:?}", g.by_label);
        assert!((0.04..0.08).contains(&share("alert")), "{:?}", g.by_label);
        assert_eq!(seq_of("lt-t-", &event_id("t", 42)), Some(42));
        assert_eq!(seq_of("lt-t-", "lt-u-42"), None);
    }
}
