//! The indicator store: a RocksDB table of threat-intel indicators, restored from the compacted
//! `intel.indicators.v1` topic, and the matcher that looks up the values of a canonical event
//! in it (feature `indicator-store`).
//!
//! # Layout
//!
//! Four column families (byte layouts in `codec.rs`):
//!
//! | column family | key | value |
//! | --- | --- | --- |
//! | `by_ioc` | type byte + normalised value (IP addresses as 4/16 bytes) | set of indicator ids |
//! | `cidr` | family (4/6) + prefix length + network bytes | set of indicator ids |
//! | `by_id` | STIX id | the indicator: modified, valid_until, confidence, TLP, provider, name, and each IOC as written with the key it is indexed under |
//! | `meta` | `format`, `count`, `offset<partition>` | layout version, number of indicators, next offset to read per partition |
//!
//! Keeping each IOC's index key in `by_id` makes removal exact: a modified or deleted indicator
//! removes precisely the keys it was indexed under, even if a later build normalises
//! differently. Every [`IndicatorStore::apply`] is one atomic `WriteBatch` that also records
//! the topic offsets, so after a crash or restart the table and [`IndicatorStore::offsets`]
//! agree and the consumer resumes exactly where the table stops.
//!
//! # Matching
//!
//! A match is reported only when the observed value equals an IOC of the same kind, after the
//! normalisation of both sides (see [`normalize_url`] and the module `normalize`), or lies
//! inside it:
//!
//! - **IPs**: the address equals a stored address (`/32` and `/128` are addresses), or lies in a
//!   stored CIDR. The prefix lengths in use are kept per family (derived from the `cidr` keys on
//!   open, updated on write), and a lookup probes exactly one key per length in use: O(#lengths).
//!   IPv4-mapped IPv6 addresses are IPv4 on both sides. **Decision on very short prefixes**:
//!   networks shorter than [`StoreOptions::min_prefix_v4`] (default /8) or
//!   [`StoreOptions::min_prefix_v6`] (default /16), `/0` included, are not indexed and are
//!   reported in [`ApplyStats::skipped_iocs`]: a `0.0.0.0/0` indicator is a feed error that
//!   would flag every event. Set the minimum to 0 to index them anyway.
//! - **Domains**: the observed name and each parent with at least two labels
//!   (`a.b.example.com` → `a.b.example.com`, `b.example.com`, `example.com`), so an indicator on
//!   `example.com` matches its subdomains, never `badexample.com`, and nothing is matched on a
//!   bare TLD reached as a parent. A name that is an IP literal is looked up as an IP by
//!   [`IndicatorStore::match_event`].
//! - **URLs**: exact equality after [`normalize_url`] (no prefix matching).
//! - **E-mail addresses**: exact, lower-case. **Hashes**: exact, lower-case hex of the right
//!   length, per algorithm (an MD5 never matches a SHA-1 indicator).
//! - `valid_until` is checked on every lookup (`now_ms < valid_until`), never cached.
//!
//! A reported match always names an IOC of the indicator's current version that is indexed
//! under exactly the probed key: an id left in a set by a bug or a damaged file yields no
//! match rather than a wrong one. [`IndicatorStore::verify`] checks the whole index.
//!
//! # Memory and speed
//!
//! Memory is bounded by [`StoreOptions`] and the data size: one shared LRU block cache of data
//! blocks (`block_cache_bytes`), memtables capped at `write_buffer_bytes` in total, a front
//! cache of at most `front_cache_entries` lookup results (every candidate match of one
//! observed value, misses included: about 100 bytes per miss entry plus the matches of a hit),
//! and the index and filter blocks of the table files, kept in memory outside the block cache
//! (about 6 MiB per million indicators). Every column family has whole-key bloom filters
//! (10 bits/key, memtables too) and hash-indexed data blocks, so a miss rarely reads a data
//! block. Any write that changes the table invalidates the front cache as a whole (writes come
//! in batches, every few minutes in steady state).
//!
//! Measured with 1M indicators on one core (`benches/indicator_store.rs`, a shared 2-core VM,
//! so ±30% between runs): restore in batches of 10k in 4.5–6.7 s, reopen 0.15 s; with a warm
//! front cache 1.0–2.1M hits/s and 6–8M misses/s, `match_event` 0.8–1.0M events/s (five values
//! each); RocksDB alone (front cache off) about 0.1M hits/s and 0.9M misses/s.
//!
//! An IOC shared by many indicators is one id set, rewritten whole when one of them changes:
//! fine for the usual handful, costly for tens of thousands of indicators on one value.
//!
//! The store is `Send + Sync`: share it with an `Arc`; lookups run concurrently, writes are
//! serialised internally.

mod cache;
mod codec;
mod normalize;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType,
    DataBlockIndexType, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

use crate::event::{Enrichment, SecurityEvent, MAX_MILLIS, MIN_MILLIS};
use crate::intel::pattern::IocType;

use cache::FrontCache;
use codec::{IndexCf, IndexKey, Record, RecordIoc};
pub use normalize::{
    normalize_domain, normalize_email, normalize_hash, normalize_url, parse_observed_ip,
};
use normalize::{IpIoc, NormalUrl};

/// Column family of exact IOC values.
pub const CF_BY_IOC: &str = "by_ioc";
/// Column family of indicators by STIX id.
pub const CF_BY_ID: &str = "by_id";
/// Column family of CIDR networks.
pub const CF_CIDR: &str = "cidr";
/// Column family of the layout version, indicator count and topic offsets.
pub const CF_META: &str = "meta";

/// Version of the on-disk layout. A store written with another version is refused by
/// [`IndicatorStore::open`] ([`StoreError::Format`]): delete it ([`IndicatorStore::destroy`])
/// and restore from the topic.
pub const FORMAT_VERSION: u32 = 1;

/// An indicator as the store keeps it (the caller converts from the topic's record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredIndicator {
    /// STIX id, `indicator--<uuid>`: not empty, no whitespace or control characters, at most
    /// 512 bytes (the limits of `Enrichment.indicator_id`).
    pub id: String,
    /// STIX `modified`, UTC epoch milliseconds. An upsert older than the stored version is
    /// ignored.
    pub modified_ms: i64,
    /// The atomic IOCs. IPv4/IPv6 values may be CIDR blocks.
    pub iocs: Vec<(IocType, String)>,
    /// End of validity, UTC epoch milliseconds: the indicator matches while `now < valid_until`.
    pub valid_until_ms: Option<i64>,
    /// STIX confidence, 0–100.
    pub confidence: Option<i32>,
    /// TLP marking, e.g. `amber`.
    pub tlp: Option<String>,
    /// Intel source (TAXII server/collection or feed name).
    pub provider: String,
    /// Indicator name.
    pub name: Option<String>,
}

/// One record of the indicator topic, as applied to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new or modified indicator.
    Upsert(StoredIndicator),
    /// A tombstone (revoked or expired indicator): removes the indicator and its IOCs.
    Delete {
        /// STIX id.
        id: String,
    },
}

impl Change {
    /// The STIX id the change is about.
    pub fn id(&self) -> &str {
        match self {
            Change::Upsert(i) => &i.id,
            Change::Delete { id } => id,
        }
    }
}

/// Tuning of [`IndicatorStore::open`]; the defaults suit a million indicators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// RocksDB block cache (data, index and filter blocks of every column family), bytes.
    /// Default 64 MiB.
    pub block_cache_bytes: usize,
    /// Memtables of all column families together, bytes; each column family's memtable is at
    /// most half of it. Default 32 MiB.
    pub write_buffer_bytes: usize,
    /// Table files kept open (their readers are small: index and filters live in the block
    /// cache). Default 512.
    pub max_open_files: i32,
    /// Entries of the in-process front cache of lookup results; 0 disables it. Default 262,144.
    pub front_cache_entries: usize,
    /// IPv4 networks shorter than this are not indexed (reported as skipped). Default 8.
    pub min_prefix_v4: u8,
    /// IPv6 networks shorter than this are not indexed (reported as skipped). Default 16.
    pub min_prefix_v6: u8,
    /// `fsync` the write-ahead log on every [`IndicatorStore::apply`]. Default false: the
    /// table is a cache of the topic; without sync a machine crash can lose the last batches,
    /// never split one (offsets and data stay consistent) — they are read again.
    pub sync_writes: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            block_cache_bytes: 64 << 20,
            write_buffer_bytes: 32 << 20,
            max_open_files: 512,
            front_cache_entries: 1 << 18,
            min_prefix_v4: 8,
            min_prefix_v6: 16,
            sync_writes: false,
        }
    }
}

/// An indicator IOC that matched a looked-up value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// STIX id of the indicator.
    pub indicator_id: String,
    /// Type of the IOC that matched.
    pub ioc_type: IocType,
    /// The IOC as written in the indicator (e.g. `example.com` for a lookup of
    /// `www.example.com`, `198.51.100.0/24` for `198.51.100.7`), surrounding whitespace trimmed.
    pub ioc_value: String,
    /// Confidence of the indicator.
    pub confidence: Option<i32>,
    /// TLP marking of the indicator.
    pub tlp: Option<String>,
    /// End of validity of the indicator, UTC epoch milliseconds.
    pub valid_until_ms: Option<i64>,
    /// Intel source.
    pub provider: String,
    /// Indicator name.
    pub name: Option<String>,
}

impl Match {
    /// Whether the indicator is valid at `now_ms` (`now < valid_until`, or no end).
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        self.valid_until_ms.is_none_or(|until| now_ms < until)
    }
}

/// An IOC that was stored with its indicator but not indexed (it can never match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedIoc {
    /// STIX id of the indicator.
    pub indicator_id: String,
    /// IOC type.
    pub ioc_type: IocType,
    /// The value as given.
    pub value: String,
    /// Why it is not indexed.
    pub reason: String,
}

/// A change that was not applied because it cannot be represented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedChange {
    /// The id as given.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// What one [`IndicatorStore::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Upserts written (new or modified indicators).
    pub upserted: usize,
    /// Upserts ignored because the stored version has a newer `modified`.
    pub stale: usize,
    /// Upserts identical to the stored version (e.g. re-read after a restart): nothing to do.
    pub unchanged: usize,
    /// Indicators removed by a delete.
    pub deleted: usize,
    /// Deletes of ids the store does not hold.
    pub unknown_deletes: usize,
    /// Upserts refused (invalid id).
    pub rejected: Vec<RejectedChange>,
    /// IOCs of written indicators that are not indexed (malformed values, too-short prefixes).
    pub skipped_iocs: Vec<SkippedIoc>,
}

/// Sizes found by [`IndicatorStore::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Indicators in `by_id`.
    pub indicators: u64,
    /// Keys in `by_ioc` (distinct exact values).
    pub by_ioc_keys: u64,
    /// Keys in `cidr` (distinct networks).
    pub cidr_keys: u64,
    /// Sum of the id-set sizes over both (one per indicator and distinct indexed IOC).
    pub postings: u64,
}

/// Errors of the indicator store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB failed (I/O, lock held by another process, …).
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// Stored bytes do not decode: the directory is damaged; delete it and restore from the
    /// topic.
    #[error("corrupt entry in column family {cf} at key {key}: {reason}")]
    Corrupt {
        /// Column family.
        cf: &'static str,
        /// The key, printable (lossy UTF-8, or hex for binary keys).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds another layout version.
    #[error("indicator store format {found}, this build reads {expected}: delete the directory and restore from the topic")]
    Format {
        /// Version found.
        found: u32,
        /// [`FORMAT_VERSION`].
        expected: u32,
    },
    /// An option is out of range.
    #[error("invalid store option: {0}")]
    Options(String),
    /// A column family is missing (cannot happen after a successful open).
    #[error("column family {0} is missing")]
    MissingColumnFamily(&'static str),
    /// [`IndicatorStore::verify`] found the index and the indicators disagreeing.
    #[error("indicator store is inconsistent: {0}")]
    Inconsistent(String),
}

fn printable_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_owned(),
        _ => key.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

fn corrupt<'a>(cf: &'static str, key: &'a [u8]) -> impl FnOnce(String) -> StoreError + 'a {
    move |reason| StoreError::Corrupt {
        cf,
        key: printable_key(key),
        reason,
    }
}

/// The indicator table and matcher. See the module documentation.
pub struct IndicatorStore {
    db: DB,
    path: PathBuf,
    opts: StoreOptions,
    read_opts: ReadOptions,
    write_opts: WriteOptions,
    /// Serialises [`IndicatorStore::apply`] (read-modify-write of the id sets).
    writer: Mutex<()>,
    /// Bumped after every write that changes the table; tags front-cache entries.
    generation: AtomicU64,
    /// Number of indicators held.
    count: AtomicU64,
    /// Bit `L` set: some IPv4 network of length `L` is indexed.
    v4_lengths: AtomicU64,
    /// Bit `L` (in `[L / 64]`, bit `L % 64`) set: some IPv6 network of length `L`.
    v6_lengths: [AtomicU64; 2],
    cache: FrontCache,
}

impl fmt::Debug for IndicatorStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IndicatorStore")
            .field("path", &self.path)
            .field("opts", &self.opts)
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

fn cf_options(cache: &Cache, opts: &StoreOptions) -> Options {
    let mut bb = BlockBasedOptions::default();
    bb.set_block_cache(cache);
    bb.set_bloom_filter(10.0, false);
    bb.set_whole_key_filtering(true);
    // Index and filter blocks stay with the open table files, always in memory (about 1.25
    // bytes of filter per key plus an index of ~1% of the data: ~6 MiB per million
    // indicators), outside the block cache: a lookup never waits for a filter to be read
    // back after data blocks pushed it out. Measured: misses 1.2 µs instead of 2.1 µs with
    // partitioned index/filters in the cache, and no 70 µs misses once the data outgrows the
    // cache (whole-file filters evicted and re-read).
    bb.set_cache_index_and_filter_blocks(false);
    bb.set_data_block_index_type(DataBlockIndexType::BinaryAndHash);
    bb.set_data_block_hash_ratio(0.75);
    let mut o = Options::default();
    o.set_block_based_table_factory(&bb);
    o.set_compression_type(DBCompressionType::Lz4);
    o.set_write_buffer_size((opts.write_buffer_bytes / 2).max(1 << 20));
    o.set_max_write_buffer_number(2);
    o.set_memtable_whole_key_filtering(true);
    o.set_memtable_prefix_bloom_ratio(0.1);
    o.set_level_compaction_dynamic_level_bytes(true);
    o
}

/// Checks an indicator id against the limits of `Enrichment.indicator_id`.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        Err("empty id".into())
    } else if id.len() > 512 {
        Err(format!("id is {} bytes long, at most 512", id.len()))
    } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("id contains whitespace or control characters".into())
    } else {
        Ok(())
    }
}

/// STIX object type of an IOC type, as written to `Enrichment.ioc_type`: `ipv4-addr`,
/// `ipv6-addr`, `domain-name`, `url`, `email-addr`, and `file` for every hash (the matched
/// field, e.g. `file.sha256`, names the algorithm).
pub fn stix_type(t: IocType) -> &'static str {
    match t {
        IocType::Ipv4 => "ipv4-addr",
        IocType::Ipv6 => "ipv6-addr",
        IocType::Domain => "domain-name",
        IocType::Url => "url",
        IocType::Email => "email-addr",
        IocType::Md5 | IocType::Sha1 | IocType::Sha256 | IocType::Sha512 => "file",
    }
}

/// TLP marking in the form `Enrichment.tlp` accepts (`clear`, `white`, `green`, `amber`,
/// `amber+strict`, `red`), from e.g. `TLP:AMBER`; `None` for anything else.
pub fn normalize_tlp(tlp: &str) -> Option<String> {
    let t = tlp.trim().to_ascii_lowercase();
    let t = t.strip_prefix("tlp:").unwrap_or(&t).trim();
    const TLP: &[&str] = &["clear", "white", "green", "amber", "amber+strict", "red"];
    TLP.contains(&t).then(|| t.to_owned())
}

/// What one observed value is looked up as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    /// An address: exact key, then one `cidr` key per prefix length in use.
    Ip(IpAddr),
    /// A normalised domain, as its `by_ioc` key (tag + name): itself and its parents (none
    /// for an IP literal).
    Domain(Vec<u8>),
    /// One `by_ioc` key (URL, e-mail, hash).
    Exact(Vec<u8>),
}

impl Probe {
    /// The probe of an observed value of type `t`; `None` if the value is malformed for it.
    fn observed(t: IocType, value: &str) -> Option<Probe> {
        match t {
            IocType::Ipv4 | IocType::Ipv6 => parse_observed_ip(value).map(Probe::Ip),
            IocType::Domain => normalize_domain(value).map(|d| Probe::domain(&d)),
            IocType::Url => normalize_url(value).map(|u| Probe::Exact(codec::text_key(t, &u))),
            IocType::Email => normalize_email(value).map(|e| Probe::Exact(codec::text_key(t, &e))),
            IocType::Md5 | IocType::Sha1 | IocType::Sha256 | IocType::Sha512 => {
                normalize_hash(t, value).map(|h| Probe::Exact(codec::text_key(t, &h)))
            }
        }
    }

    /// A host name as found in an event (DNS query, host name, URL host): an IP literal is
    /// looked up as an IP, anything else as a domain.
    fn host(value: &str) -> Option<Probe> {
        let v = value.trim();
        let unbracketed = v
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(v);
        match parse_observed_ip(unbracketed) {
            Some(ip) => Some(Probe::Ip(ip)),
            None => normalize_domain(v).map(|d| Probe::domain(&d)),
        }
    }

    /// The probe of a normalised domain.
    fn domain(normalised: &str) -> Probe {
        Probe::Domain(codec::text_key(IocType::Domain, normalised))
    }

    /// Calls `f` with the front-cache key (no allocation). Distinct probes have distinct keys:
    /// the tag byte says the kind (IPs 1/2, domain 3, others their own type code).
    fn with_cache_key<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Probe::Ip(ip) => {
                let mut buf = [0u8; 17];
                let n = match ip {
                    IpAddr::V4(a) => {
                        buf[0] = codec::ioc_code(IocType::Ipv4);
                        buf[1..5].copy_from_slice(&a.octets());
                        5
                    }
                    IpAddr::V6(a) => {
                        buf[0] = codec::ioc_code(IocType::Ipv6);
                        buf[1..17].copy_from_slice(&a.octets());
                        17
                    }
                };
                f(&buf[..n])
            }
            Probe::Domain(k) | Probe::Exact(k) => f(k),
        }
    }
}

impl IndicatorStore {
    /// Opens (creating if needed) the store in directory `path`.
    pub fn open(path: impl AsRef<Path>, opts: StoreOptions) -> Result<IndicatorStore, StoreError> {
        if opts.min_prefix_v4 > 32 {
            return Err(StoreError::Options(format!(
                "min_prefix_v4 {} is above 32",
                opts.min_prefix_v4
            )));
        }
        if opts.min_prefix_v6 > 128 {
            return Err(StoreError::Options(format!(
                "min_prefix_v6 {} is above 128",
                opts.min_prefix_v6
            )));
        }
        if opts.max_open_files == 0 || opts.max_open_files < -1 {
            return Err(StoreError::Options(format!(
                "max_open_files {} (use -1 for unlimited or a positive count)",
                opts.max_open_files
            )));
        }
        let path = path.as_ref().to_path_buf();
        let block_cache = Cache::new_lru_cache(opts.block_cache_bytes);
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_background_jobs(2);
        db_opts.set_db_write_buffer_size(opts.write_buffer_bytes.max(1 << 20));
        db_opts.set_max_total_wal_size(4 * opts.write_buffer_bytes.max(1 << 20) as u64);
        db_opts.set_max_open_files(opts.max_open_files);
        db_opts.set_keep_log_file_num(4);
        db_opts.set_max_log_file_size(4 << 20);
        let cfs = [CF_BY_IOC, CF_BY_ID, CF_CIDR, CF_META]
            .map(|name| ColumnFamilyDescriptor::new(name, cf_options(&block_cache, &opts)));
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs)?;

        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(opts.sync_writes);
        let store = IndicatorStore {
            db,
            path,
            read_opts: ReadOptions::default(),
            write_opts,
            writer: Mutex::new(()),
            generation: AtomicU64::new(0),
            count: AtomicU64::new(0),
            v4_lengths: AtomicU64::new(0),
            v6_lengths: [AtomicU64::new(0), AtomicU64::new(0)],
            cache: FrontCache::new(opts.front_cache_entries),
            opts,
        };
        store.check_format()?;
        let meta = store.cf(CF_META)?;
        if let Some(b) = store.db.get_pinned_cf(meta, codec::META_COUNT)? {
            let n = codec::decode_u64(&b).map_err(corrupt(CF_META, codec::META_COUNT))?;
            store.count.store(n, Ordering::Relaxed);
        }
        for fam in [4u8, 6] {
            store.scan_lengths(fam)?;
        }
        Ok(store)
    }

    /// Deletes the store directory (to rebuild it from the topic). The store must be closed.
    pub fn destroy(path: impl AsRef<Path>) -> Result<(), StoreError> {
        DB::destroy(&Options::default(), path)?;
        Ok(())
    }

    /// The directory of the store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_format(&self) -> Result<(), StoreError> {
        let meta = self.cf(CF_META)?;
        match self.db.get_pinned_cf(meta, codec::META_FORMAT)? {
            Some(b) => {
                let v = codec::decode_u32(&b).map_err(corrupt(CF_META, codec::META_FORMAT))?;
                if v != FORMAT_VERSION {
                    return Err(StoreError::Format {
                        found: v,
                        expected: FORMAT_VERSION,
                    });
                }
            }
            None => {
                let by_id = self.cf(CF_BY_ID)?;
                let mut it = self.db.raw_iterator_cf(by_id);
                it.seek_to_first();
                it.status()?;
                if it.valid() {
                    // Data without a version: not written by this code.
                    return Err(StoreError::Format {
                        found: 0,
                        expected: FORMAT_VERSION,
                    });
                }
                self.db.put_cf_opt(
                    meta,
                    codec::META_FORMAT,
                    FORMAT_VERSION.to_le_bytes(),
                    &self.write_opts,
                )?;
            }
        }
        Ok(())
    }

    fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or(StoreError::MissingColumnFamily(name))
    }

    fn index_cf(&self, cf: IndexCf) -> Result<&ColumnFamily, StoreError> {
        self.cf(index_cf_name(cf))
    }

    fn lengths_word(&self, fam: u8, len: u8) -> &AtomicU64 {
        if fam == 4 {
            &self.v4_lengths
        } else {
            &self.v6_lengths[usize::from(len / 64).min(1)]
        }
    }

    fn set_length(&self, fam: u8, len: u8, present: bool) {
        let bit = 1u64 << (len % 64);
        let w = self.lengths_word(fam, len);
        if present {
            w.fetch_or(bit, Ordering::AcqRel);
        } else {
            w.fetch_and(!bit, Ordering::AcqRel);
        }
    }

    /// Prefix lengths in use for family 4 or 6, shortest first.
    fn lengths(&self, fam: u8) -> impl Iterator<Item = u8> {
        let words = if fam == 4 {
            [self.v4_lengths.load(Ordering::Acquire), 0]
        } else {
            [
                self.v6_lengths[0].load(Ordering::Acquire),
                self.v6_lengths[1].load(Ordering::Acquire),
            ]
        };
        (0u8..128).filter(move |l| words[usize::from(l / 64)] & (1u64 << (l % 64)) != 0)
    }

    /// Finds the prefix lengths present in `cidr` for a family: one seek per length present
    /// (keys sort by family, then length).
    fn scan_lengths(&self, fam: u8) -> Result<(), StoreError> {
        let cidr = self.cf(CF_CIDR)?;
        let max: u8 = if fam == 4 { 32 } else { 128 };
        let mut it = self.db.raw_iterator_cf(cidr);
        let mut len = 0u8;
        while len < max {
            it.seek([fam, len]);
            it.status()?;
            let found = match it.key() {
                Some(k) if k.len() >= 2 && k[0] == fam => k[1],
                _ => break,
            };
            if found >= max {
                break;
            }
            self.set_length(fam, found, true);
            len = found + 1;
        }
        Ok(())
    }

    /// Whether some `cidr` key of this family and length exists.
    fn length_present(&self, fam: u8, len: u8) -> Result<bool, StoreError> {
        let cidr = self.cf(CF_CIDR)?;
        let mut it = self.db.raw_iterator_cf(cidr);
        it.seek([fam, len]);
        it.status()?;
        Ok(matches!(it.key(), Some(k) if k.len() >= 2 && k[0] == fam && k[1] == len))
    }

    /// Number of indicators held (deleted ones excluded; expired ones count until their
    /// tombstone arrives, they just never match).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Next offset to read per partition of the indicator topic, as recorded by
    /// [`IndicatorStore::apply`]. Partitions never recorded are absent (read them from the
    /// beginning).
    pub fn offsets(&self) -> Result<BTreeMap<i32, i64>, StoreError> {
        let meta = self.cf(CF_META)?;
        let mut out = BTreeMap::new();
        let mut it = self.db.raw_iterator_cf(meta);
        it.seek(codec::META_OFFSET);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(codec::META_OFFSET) {
                break;
            }
            let p = codec::partition_of(k)
                .ok_or_else(|| corrupt(CF_META, k)("not an offset key".into()))?;
            let o = codec::decode_u64(v).map_err(corrupt(CF_META, k))? as i64;
            out.insert(p, o);
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// The stored indicator `id`, as written by the last applied upsert.
    pub fn get(&self, id: &str) -> Result<Option<StoredIndicator>, StoreError> {
        Ok(self.record(id)?.map(|r| StoredIndicator {
            id: id.to_owned(),
            modified_ms: r.modified_ms,
            iocs: r.iocs.into_iter().map(|i| (i.ioc_type, i.value)).collect(),
            valid_until_ms: r.valid_until_ms,
            confidence: r.confidence,
            tlp: r.tlp,
            provider: r.provider,
            name: r.name,
        }))
    }

    fn record(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let by_id = self.cf(CF_BY_ID)?;
        match self
            .db
            .get_pinned_cf_opt(by_id, id.as_bytes(), &self.read_opts)?
        {
            None => Ok(None),
            Some(b) => codec::decode_record(&b)
                .map(Some)
                .map_err(corrupt(CF_BY_ID, id.as_bytes())),
        }
    }

    /// The index key of one IOC, or why it is not indexed.
    fn index_key(&self, t: IocType, value: &str) -> Result<IndexKey, String> {
        let by_ioc = |norm: Option<String>, what: &str| match norm {
            Some(n) => Ok(IndexKey {
                cf: IndexCf::ByIoc,
                key: codec::text_key(t, &n),
            }),
            None => Err(format!("`{value}` is not a valid {what}")),
        };
        match t {
            IocType::Ipv4 | IocType::Ipv6 => {
                let ip = normalize::parse_ip_ioc(t, value)?;
                if let IpIoc::Net(net, len) = ip {
                    let min = match net {
                        IpAddr::V4(_) => self.opts.min_prefix_v4,
                        IpAddr::V6(_) => self.opts.min_prefix_v6,
                    };
                    if len < min {
                        return Err(format!(
                            "prefix /{len} is shorter than the configured minimum /{min}"
                        ));
                    }
                }
                Ok(codec::ip_index_key(ip))
            }
            IocType::Domain => by_ioc(normalize_domain(value), "domain name"),
            IocType::Url => by_ioc(normalize_url(value), "URL (scheme://host…)"),
            IocType::Email => by_ioc(normalize_email(value), "e-mail address"),
            IocType::Md5 | IocType::Sha1 | IocType::Sha256 | IocType::Sha512 => {
                by_ioc(normalize_hash(t, value), t.as_str())
            }
        }
    }

    fn build_record(&self, ind: &StoredIndicator, skipped: &mut Vec<SkippedIoc>) -> Record {
        let iocs = ind
            .iocs
            .iter()
            .map(|(t, v)| {
                let index = match self.index_key(*t, v) {
                    Ok(k) => Some(k),
                    Err(reason) => {
                        skipped.push(SkippedIoc {
                            indicator_id: ind.id.clone(),
                            ioc_type: *t,
                            value: v.clone(),
                            reason,
                        });
                        None
                    }
                };
                RecordIoc {
                    ioc_type: *t,
                    value: v.clone(),
                    index,
                }
            })
            .collect();
        Record {
            modified_ms: ind.modified_ms,
            valid_until_ms: ind.valid_until_ms,
            confidence: ind.confidence,
            tlp: ind.tlp.clone(),
            provider: ind.provider.clone(),
            name: ind.name.clone(),
            iocs,
        }
    }

    /// Applies a batch of topic records in order, and records `offsets` (partition → next
    /// offset to read) — all in one atomic write.
    ///
    /// - An upsert replaces the stored indicator: the IOCs of the previous version are
    ///   removed from the index and the new ones added. An upsert whose `modified` is older
    ///   than the stored one is ignored ([`ApplyStats::stale`]); one with the same `modified`
    ///   is applied if it differs (so a corrected conversion takes effect), else counted as
    ///   [`ApplyStats::unchanged`].
    /// - A delete removes the indicator and its IOCs. No tombstone is kept: an upsert that
    ///   comes after the delete is applied whatever its `modified` (a compacted topic never
    ///   carries an older version after a tombstone of the same key).
    /// - IOCs that cannot be indexed are kept with the indicator but reported in
    ///   [`ApplyStats::skipped_iocs`]; upserts with an invalid id are not applied
    ///   ([`ApplyStats::rejected`]).
    ///
    /// On error nothing is written (neither changes nor offsets).
    pub fn apply(
        &self,
        batch: &[Change],
        offsets: &[(i32, i64)],
    ) -> Result<ApplyStats, StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut stats = ApplyStats::default();
        let by_id = self.cf(CF_BY_ID)?;
        let meta = self.cf(CF_META)?;

        // 1. The stored version of every id in the batch.
        let mut ids: Vec<&str> = batch.iter().map(Change::id).collect();
        ids.sort_unstable();
        ids.dedup();
        struct Slot {
            original: Option<Record>,
            current: Option<Record>,
        }
        let mut slots: HashMap<&str, Slot> = HashMap::with_capacity(ids.len());
        let fetched = self.db.batched_multi_get_cf_opt(
            by_id,
            ids.iter().map(|s| s.as_bytes()),
            true,
            &self.read_opts,
        );
        for (id, res) in ids.iter().zip(fetched) {
            let original = match res? {
                None => None,
                Some(b) => {
                    Some(codec::decode_record(&b).map_err(corrupt(CF_BY_ID, id.as_bytes()))?)
                }
            };
            slots.insert(
                id,
                Slot {
                    current: original.clone(),
                    original,
                },
            );
        }

        // 2. The changes, in order, on the in-memory versions.
        for change in batch {
            let Some(slot) = slots.get_mut(change.id()) else {
                continue; // every id was fetched above
            };
            match change {
                Change::Upsert(ind) => {
                    if let Err(reason) = check_id(&ind.id) {
                        stats.rejected.push(RejectedChange {
                            id: ind.id.clone(),
                            reason,
                        });
                        continue;
                    }
                    if let Some(cur) = &slot.current {
                        if ind.modified_ms < cur.modified_ms {
                            stats.stale += 1;
                            continue;
                        }
                    }
                    let rec = self.build_record(ind, &mut stats.skipped_iocs);
                    if slot.current.as_ref() == Some(&rec) {
                        stats.unchanged += 1;
                    } else {
                        slot.current = Some(rec);
                        stats.upserted += 1;
                    }
                }
                Change::Delete { .. } => {
                    if slot.current.take().is_some() {
                        stats.deleted += 1;
                    } else {
                        stats.unknown_deletes += 1;
                    }
                }
            }
        }

        // 3. Index differences between the stored and the final versions.
        let mut edits: BTreeMap<IndexKey, (Vec<&str>, Vec<&str>)> = BTreeMap::new(); // (remove, add)
        let mut wb = WriteBatch::default();
        let mut changed = false;
        let mut count = self.count() as i64;
        for (id, slot) in &slots {
            if slot.original == slot.current {
                continue;
            }
            changed = true;
            let keys = |r: &Option<Record>| -> BTreeSet<IndexKey> {
                r.iter()
                    .flat_map(|r| r.iocs.iter().filter_map(|i| i.index.clone()))
                    .collect()
            };
            let (old, new) = (keys(&slot.original), keys(&slot.current));
            for k in old.difference(&new) {
                edits.entry(k.clone()).or_default().0.push(id);
            }
            for k in new.difference(&old) {
                edits.entry(k.clone()).or_default().1.push(id);
            }
            match &slot.current {
                Some(r) => wb.put_cf(by_id, id.as_bytes(), codec::encode_record(r)),
                None => wb.delete_cf(by_id, id.as_bytes()),
            }
            count += i64::from(slot.current.is_some()) - i64::from(slot.original.is_some());
        }

        // 4. Read-modify-write of the id sets.
        let mut new_lengths = BTreeSet::new();
        let mut emptied_lengths = BTreeSet::new();
        for cf in [IndexCf::ByIoc, IndexCf::Cidr] {
            let handle = self.index_cf(cf)?;
            let keys: Vec<&IndexKey> = edits.keys().filter(|k| k.cf == cf).collect();
            let sets = self.db.batched_multi_get_cf_opt(
                handle,
                keys.iter().map(|k| k.key.as_slice()),
                true,
                &self.read_opts,
            );
            for (key, res) in keys.into_iter().zip(sets) {
                let existed;
                let mut ids = match res? {
                    Some(b) => {
                        existed = true;
                        codec::decode_set(&b).map_err(corrupt(index_cf_name(cf), &key.key))?
                    }
                    None => {
                        existed = false;
                        Vec::new()
                    }
                };
                let Some((remove, add)) = edits.get(key) else {
                    continue;
                };
                // O((set + changes) log) even when many indicators share one IOC.
                if !remove.is_empty() {
                    let remove: BTreeSet<&str> = remove.iter().copied().collect();
                    ids.retain(|x| !remove.contains(x.as_str()));
                }
                if !add.is_empty() {
                    ids.extend(add.iter().map(|id| (*id).to_owned()));
                    ids.sort_unstable();
                    ids.dedup();
                }
                let cidr_len =
                    (cf == IndexCf::Cidr && key.key.len() >= 2).then(|| (key.key[0], key.key[1]));
                if ids.is_empty() {
                    if existed {
                        wb.delete_cf(handle, &key.key);
                        if let Some(l) = cidr_len {
                            emptied_lengths.insert(l);
                        }
                    }
                } else {
                    wb.put_cf(handle, &key.key, codec::encode_set(&ids));
                    if let Some(l) = cidr_len {
                        new_lengths.insert(l);
                    }
                }
            }
        }

        // 5. Offsets and count, in the same batch.
        for (partition, offset) in offsets {
            wb.put_cf(meta, codec::offset_key(*partition), offset.to_le_bytes());
        }
        if changed {
            wb.put_cf(meta, codec::META_COUNT, (count.max(0) as u64).to_le_bytes());
        }

        // Lengths are announced before the write (a lookup probes a length with no key yet:
        // harmless) and withdrawn after it.
        for (fam, len) in &new_lengths {
            self.set_length(*fam, *len, true);
        }
        self.db.write_opt(wb, &self.write_opts)?;
        if changed {
            self.count.store(count.max(0) as u64, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
            self.cache.clear();
            for (fam, len) in emptied_lengths {
                if !new_lengths.contains(&(fam, len)) && !self.length_present(fam, len)? {
                    self.set_length(fam, len, false);
                }
            }
        }
        Ok(stats)
    }

    /// Every indicator IOC matching an observed value of type `ioc_type` that is valid at
    /// `now_ms`, sorted by indicator id, type and value, without duplicates. `Ipv4` and
    /// `Ipv6` both take any address (no CIDR); `Domain` also matches the parents (see the
    /// module documentation). A malformed value matches nothing.
    pub fn lookup(
        &self,
        ioc_type: IocType,
        value: &str,
        now_ms: i64,
    ) -> Result<Vec<Match>, StoreError> {
        match Probe::observed(ioc_type, value) {
            None => Ok(Vec::new()),
            Some(p) => Ok(self.valid(&p, now_ms)?.collect()),
        }
    }

    fn valid(&self, probe: &Probe, now_ms: i64) -> Result<impl Iterator<Item = Match>, StoreError> {
        let all = self.candidates(probe)?;
        Ok((0..all.len())
            .filter_map(move |i| all.get(i).filter(|m| m.is_valid_at(now_ms)).cloned()))
    }

    /// Every match of a probe regardless of validity, through the front cache.
    fn candidates(&self, probe: &Probe) -> Result<Arc<[Match]>, StoreError> {
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(hit) = probe.with_cache_key(|k| self.cache.get(k, generation)) {
            return Ok(hit);
        }
        let mut keys: Vec<IndexKey> = Vec::new();
        match probe {
            Probe::Ip(ip) => {
                keys.push(IndexKey {
                    cf: IndexCf::ByIoc,
                    key: codec::ip_exact_key(*ip),
                });
                for len in self.lengths(codec::family(*ip)) {
                    keys.push(IndexKey {
                        cf: IndexCf::Cidr,
                        key: codec::cidr_key(normalize::mask(*ip, len), len),
                    });
                }
            }
            Probe::Domain(k) => {
                // The key is the tag byte and a `String`'s bytes: valid UTF-8 after the tag.
                let d = k
                    .get(1..)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .unwrap_or("");
                if d.parse::<IpAddr>().is_ok() {
                    keys.push(IndexKey {
                        cf: IndexCf::ByIoc,
                        key: k.clone(),
                    });
                } else {
                    for name in normalize::domain_and_parents(d) {
                        keys.push(IndexKey {
                            cf: IndexCf::ByIoc,
                            key: codec::text_key(IocType::Domain, name),
                        });
                    }
                }
            }
            Probe::Exact(k) => keys.push(IndexKey {
                cf: IndexCf::ByIoc,
                key: k.clone(),
            }),
        }
        let mut out = Vec::new();
        for key in &keys {
            let cf_name = index_cf_name(key.cf);
            let Some(set) =
                self.db
                    .get_pinned_cf_opt(self.index_cf(key.cf)?, &key.key, &self.read_opts)?
            else {
                continue;
            };
            for id in codec::decode_set(&set).map_err(corrupt(cf_name, &key.key))? {
                // A dangling id (cannot happen with atomic writes) or an IOC list without
                // this key (likewise) yields no match: only an IOC indexed under exactly
                // this key is reported.
                let Some(rec) = self.record(&id)? else {
                    continue;
                };
                if let Some(ioc) = rec.iocs.iter().find(|i| i.index.as_ref() == Some(key)) {
                    out.push(Match {
                        indicator_id: id.clone(),
                        ioc_type: ioc.ioc_type,
                        ioc_value: ioc.value.trim().to_owned(),
                        confidence: rec.confidence,
                        tlp: rec.tlp.clone(),
                        valid_until_ms: rec.valid_until_ms,
                        provider: rec.provider.clone(),
                        name: rec.name.clone(),
                    });
                }
            }
        }
        out.sort();
        out.dedup_by(|a, b| {
            a.indicator_id == b.indicator_id
                && a.ioc_type == b.ioc_type
                && a.ioc_value == b.ioc_value
        });
        let out: Arc<[Match]> = out.into();
        probe.with_cache_key(|k| self.cache.insert(k, generation, out.clone()));
        Ok(out)
    }

    /// The enrichments of an event: every indicator valid at `now_ms` whose IOC matches one of
    /// the event's values. Looked up, with `matched_field`:
    ///
    /// | field | as |
    /// | --- | --- |
    /// | `network.src_ip`, `network.dst_ip`, `host.ip` | IP |
    /// | `network.src_hostname`, `network.dst_hostname`, `dns.query` | domain (IP if an IP literal) |
    /// | `dns.answers.data` | type `A`/`AAAA`: IP; `CNAME`/`DNAME`/`NS`/`PTR`: domain; no type: IP if it parses, else domain; other types are not looked up |
    /// | `http.url` | URL, and its host as a domain (or IP) |
    /// | `file.md5`, `file.sha1`, `file.sha256`, `process.sha256`, `email.attachments.sha256` | that hash |
    /// | `email.from`, `email.to`, `email.cc`, `user.email`, `target_user.email` | e-mail address |
    ///
    /// Order: by field (the order above, row by row, left to right), then indicator id, IOC
    /// type and value; duplicates (same indicator, IOC and field, e.g. two answers in one
    /// CIDR) appear once. Values the producer gate would refuse are sanitised so that the
    /// enriched event validates: a confidence outside 0–100 and an unknown TLP are left out, a
    /// `valid_until` beyond year 9999 is left out, and an empty provider becomes `unknown`.
    pub fn match_event(
        &self,
        event: &SecurityEvent,
        now_ms: i64,
    ) -> Result<Vec<Enrichment>, StoreError> {
        let mut m = EventMatcher {
            store: self,
            now_ms,
            order: 0,
            out: Vec::new(),
        };
        let ip = |v: &str| parse_observed_ip(v).map(Probe::Ip);
        let exact = |t: IocType, v: &str| Probe::observed(t, v);
        if let Some(n) = &event.network {
            m.field("network.src_ip", n.src_ip.as_deref().and_then(ip))?;
            m.field("network.dst_ip", n.dst_ip.as_deref().and_then(ip))?;
        }
        if let Some(h) = &event.host {
            m.order += 1;
            for a in &h.ip {
                m.same_field("host.ip", ip(a))?;
            }
        }
        if let Some(n) = &event.network {
            m.field(
                "network.src_hostname",
                n.src_hostname.as_deref().and_then(Probe::host),
            )?;
            m.field(
                "network.dst_hostname",
                n.dst_hostname.as_deref().and_then(Probe::host),
            )?;
        }
        if let Some(d) = &event.dns {
            m.field("dns.query", Probe::host(&d.query))?;
            m.order += 1;
            for a in &d.answers {
                let probe = match a.r#type.as_deref().map(str::to_ascii_uppercase).as_deref() {
                    Some("A" | "AAAA") => ip(&a.data),
                    Some("CNAME" | "DNAME" | "NS" | "PTR") => {
                        normalize_domain(&a.data).map(|d| Probe::domain(&d))
                    }
                    Some(_) => None,
                    None => Probe::host(&a.data),
                };
                m.same_field("dns.answers.data", probe)?;
            }
        }
        if let Some(h) = &event.http {
            let parts: Option<NormalUrl> = normalize::normalize_url_parts(&h.url);
            m.order += 1;
            if let Some(p) = &parts {
                m.same_field(
                    "http.url",
                    Some(Probe::Exact(codec::text_key(IocType::Url, &p.url))),
                )?;
                m.same_field("http.url", Probe::host(&p.host))?;
            }
        }
        if let Some(f) = &event.file {
            m.field(
                "file.md5",
                f.md5.as_deref().and_then(|v| exact(IocType::Md5, v)),
            )?;
            m.field(
                "file.sha1",
                f.sha1.as_deref().and_then(|v| exact(IocType::Sha1, v)),
            )?;
            m.field(
                "file.sha256",
                f.sha256.as_deref().and_then(|v| exact(IocType::Sha256, v)),
            )?;
        }
        if let Some(p) = &event.process {
            m.field(
                "process.sha256",
                p.sha256.as_deref().and_then(|v| exact(IocType::Sha256, v)),
            )?;
        }
        if let Some(e) = &event.email {
            m.order += 1;
            for a in &e.attachments {
                m.same_field(
                    "email.attachments.sha256",
                    a.sha256.as_deref().and_then(|v| exact(IocType::Sha256, v)),
                )?;
            }
            m.field("email.from", exact(IocType::Email, &e.from))?;
            for (name, list) in [("email.to", &e.to), ("email.cc", &e.cc)] {
                m.order += 1;
                for a in list {
                    m.same_field(name, exact(IocType::Email, a))?;
                }
            }
        }
        for (name, user) in [
            ("user.email", &event.user),
            ("target_user.email", &event.target_user),
        ] {
            if let Some(u) = user {
                m.field(
                    name,
                    u.email.as_deref().and_then(|v| exact(IocType::Email, v)),
                )?;
            }
        }
        let mut out = m.out;
        out.sort_by(|(oa, a), (ob, b)| {
            (oa, &a.indicator_id, &a.ioc_type, &a.ioc_value).cmp(&(
                ob,
                &b.indicator_id,
                &b.ioc_type,
                &b.ioc_value,
            ))
        });
        out.dedup();
        Ok(out.into_iter().map(|(_, e)| e).collect())
    }

    /// Full consistency check (a diagnostic; reads everything and holds the expected index
    /// in memory, about 100 bytes per IOC): every indexed IOC of every indicator is in its
    /// key's id set, every id in a set is an indicator indexed under that key, no set is
    /// empty, the prefix lengths in use are known and the count is right. Runs under the
    /// writer lock.
    pub fn verify(&self) -> Result<IndexStats, StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut stats = IndexStats::default();
        let mut expected: HashMap<IndexKey, BTreeSet<String>> = HashMap::new();
        let by_id = self.cf(CF_BY_ID)?;
        let mut it = self.db.raw_iterator_cf(by_id);
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let id = std::str::from_utf8(k)
                .map_err(|e| corrupt(CF_BY_ID, k)(format!("id is not UTF-8: {e}")))?;
            let rec = codec::decode_record(v).map_err(corrupt(CF_BY_ID, k))?;
            for key in rec.iocs.into_iter().filter_map(|i| i.index) {
                expected.entry(key).or_default().insert(id.to_owned());
            }
            stats.indicators += 1;
            it.next();
        }
        it.status()?;
        if stats.indicators != self.count() {
            return Err(StoreError::Inconsistent(format!(
                "count is {} but {} indicators are stored",
                self.count(),
                stats.indicators
            )));
        }
        for cf in [IndexCf::ByIoc, IndexCf::Cidr] {
            let name = index_cf_name(cf);
            let mut it = self.db.raw_iterator_cf(self.index_cf(cf)?);
            it.seek_to_first();
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                let ids = codec::decode_set(v).map_err(corrupt(name, k))?;
                let key = IndexKey {
                    cf,
                    key: k.to_vec(),
                };
                let want = expected.remove(&key).unwrap_or_default();
                let got: BTreeSet<String> = ids.iter().cloned().collect();
                if ids.is_empty()
                    || got != want
                    || got.len() != ids.len()
                    || ids.windows(2).any(|w| w[0] >= w[1])
                {
                    return Err(StoreError::Inconsistent(format!(
                        "{name} key {}: ids {ids:?}, indicators indexed under it {want:?}",
                        printable_key(k)
                    )));
                }
                if cf == IndexCf::Cidr {
                    let known = k.len() >= 2 && self.lengths(k[0]).any(|l| l == k[1]);
                    if !known {
                        return Err(StoreError::Inconsistent(format!(
                            "cidr key {} has a prefix length not in use",
                            printable_key(k)
                        )));
                    }
                    stats.cidr_keys += 1;
                } else {
                    stats.by_ioc_keys += 1;
                }
                stats.postings += ids.len() as u64;
                it.next();
            }
            it.status()?;
        }
        if let Some((key, ids)) = expected.into_iter().next() {
            return Err(StoreError::Inconsistent(format!(
                "{} key {} is missing (indexed by {ids:?})",
                index_cf_name(key.cf),
                printable_key(&key.key)
            )));
        }
        Ok(stats)
    }

    /// Compacts every column family (after a full restore, or to reclaim deleted space).
    pub fn compact(&self) -> Result<(), StoreError> {
        for name in [CF_BY_IOC, CF_BY_ID, CF_CIDR, CF_META] {
            self.db
                .compact_range_cf(self.cf(name)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }
}

fn index_cf_name(cf: IndexCf) -> &'static str {
    match cf {
        IndexCf::ByIoc => CF_BY_IOC,
        IndexCf::Cidr => CF_CIDR,
    }
}

/// Collects the enrichments of one event, tagging each with the position of its field.
struct EventMatcher<'a> {
    store: &'a IndicatorStore,
    now_ms: i64,
    order: u32,
    out: Vec<(u32, Enrichment)>,
}

impl EventMatcher<'_> {
    /// Looks up a field that is its own group in the order.
    fn field(&mut self, name: &'static str, probe: Option<Probe>) -> Result<(), StoreError> {
        self.order += 1;
        self.same_field(name, probe)
    }

    /// Looks up one more value of the current group.
    fn same_field(&mut self, name: &'static str, probe: Option<Probe>) -> Result<(), StoreError> {
        let Some(probe) = probe else {
            return Ok(());
        };
        for m in self.store.valid(&probe, self.now_ms)? {
            self.out.push((self.order, enrichment(m, name)));
        }
        Ok(())
    }
}

fn enrichment(m: Match, field: &str) -> Enrichment {
    Enrichment {
        indicator_id: m.indicator_id,
        ioc_type: stix_type(m.ioc_type).to_owned(),
        ioc_value: m.ioc_value,
        matched_field: field.to_owned(),
        confidence: m.confidence.filter(|c| (0..=100).contains(c)),
        tlp: m.tlp.as_deref().and_then(normalize_tlp),
        valid_until: m
            .valid_until_ms
            .filter(|t| (MIN_MILLIS..=MAX_MILLIS).contains(t)),
        provider: if m.provider.trim().is_empty() {
            "unknown".to_owned()
        } else {
            m.provider
        },
    }
}
