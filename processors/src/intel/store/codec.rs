//! Byte layouts of the keys and values in the column families. Decoding never panics: bad
//! bytes give an error message (wrapped into `StoreError::Corrupt` by the caller).
//!
//! Keys:
//! - `by_ioc`: one tag byte ([`ioc_code`] of the type; for IPs the address family: 1 = IPv4,
//!   2 = IPv6) followed by the normalised value (4 or 16 address bytes for IPs, UTF-8 text
//!   otherwise).
//! - `cidr`: family byte (4 or 6), prefix length byte, then the network address (host bits
//!   cleared, 4 or 16 bytes). Keys sort by family, then prefix length, so the lengths in use
//!   are found with one seek per length.
//! - `by_id`: the STIX id, UTF-8.
//! - `meta`: `format` (u32 LE), `count` (u64 LE), `offset` + partition (i32 BE, sign bit
//!   flipped) → next offset (i64 LE).
//!
//! Values (all integers little-endian, strings as u32 length + UTF-8):
//! - `by_ioc` / `cidr`: the set of indicator ids, u32 count then the ids, sorted, no duplicates.
//! - `by_id`: a [`Record`], starting with the version byte [`RECORD_VERSION`].

use std::net::IpAddr;

use crate::intel::pattern::IocType;

use super::normalize::IpIoc;

/// Version byte of an encoded [`Record`].
pub(crate) const RECORD_VERSION: u8 = 1;

/// The column family an index key lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum IndexCf {
    /// `by_ioc`: exact values.
    ByIoc,
    /// `cidr`: networks.
    Cidr,
}

/// A key in `by_ioc` or `cidr`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct IndexKey {
    /// Which column family.
    pub cf: IndexCf,
    /// The key bytes.
    pub key: Vec<u8>,
}

/// Stable one-byte code of an IOC type (used in `by_ioc` keys and in records).
pub(crate) fn ioc_code(t: IocType) -> u8 {
    match t {
        IocType::Ipv4 => 1,
        IocType::Ipv6 => 2,
        IocType::Domain => 3,
        IocType::Url => 4,
        IocType::Email => 5,
        IocType::Md5 => 6,
        IocType::Sha1 => 7,
        IocType::Sha256 => 8,
        IocType::Sha512 => 9,
    }
}

fn ioc_from_code(c: u8) -> Result<IocType, String> {
    Ok(match c {
        1 => IocType::Ipv4,
        2 => IocType::Ipv6,
        3 => IocType::Domain,
        4 => IocType::Url,
        5 => IocType::Email,
        6 => IocType::Md5,
        7 => IocType::Sha1,
        8 => IocType::Sha256,
        9 => IocType::Sha512,
        _ => return Err(format!("unknown IOC type code {c}")),
    })
}

/// `by_ioc` key of an exact address.
pub(crate) fn ip_exact_key(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => {
            let mut k = Vec::with_capacity(5);
            k.push(ioc_code(IocType::Ipv4));
            k.extend_from_slice(&a.octets());
            k
        }
        IpAddr::V6(a) => {
            let mut k = Vec::with_capacity(17);
            k.push(ioc_code(IocType::Ipv6));
            k.extend_from_slice(&a.octets());
            k
        }
    }
}

/// Family byte of `cidr` keys.
pub(crate) fn family(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 6,
    }
}

/// `cidr` key of a network (`net` must already be masked to `len`).
pub(crate) fn cidr_key(net: IpAddr, len: u8) -> Vec<u8> {
    let mut k = Vec::with_capacity(18);
    k.push(family(net));
    k.push(len);
    match net {
        IpAddr::V4(a) => k.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => k.extend_from_slice(&a.octets()),
    }
    k
}

/// The index key of a parsed IP IOC.
pub(crate) fn ip_index_key(ioc: IpIoc) -> IndexKey {
    match ioc {
        IpIoc::Exact(ip) => IndexKey {
            cf: IndexCf::ByIoc,
            key: ip_exact_key(ip),
        },
        IpIoc::Net(net, len) => IndexKey {
            cf: IndexCf::Cidr,
            key: cidr_key(net, len),
        },
    }
}

/// `by_ioc` key of a normalised text value of type `t`.
pub(crate) fn text_key(t: IocType, normalised: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + normalised.len());
    k.push(ioc_code(t));
    k.extend_from_slice(normalised.as_bytes());
    k
}

/// One IOC of a stored indicator, with the key it is indexed under (`None`: not indexed
/// because the value is malformed or refused, kept so the indicator reads back as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordIoc {
    pub ioc_type: IocType,
    pub value: String,
    pub index: Option<IndexKey>,
}

/// The `by_id` value: everything about an indicator except its id (the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub modified_ms: i64,
    pub valid_until_ms: Option<i64>,
    pub confidence: Option<i32>,
    pub tlp: Option<String>,
    pub provider: String,
    pub name: Option<String>,
    pub iocs: Vec<RecordIoc>,
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        // Values longer than 4 GiB cannot reach here (Kafka records are far smaller); saturate
        // rather than wrap so a decode would fail loudly instead of misreading.
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!(
                "truncated: needed {n} more bytes, {} left",
                self.buf.len()
            ));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, String> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| format!("invalid UTF-8: {e}"))
    }
    fn flag(&mut self) -> Result<bool, String> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("bad option flag {b}")),
        }
    }
    fn opt_str(&mut self) -> Result<Option<String>, String> {
        if self.flag()? {
            self.str().map(Some)
        } else {
            Ok(None)
        }
    }
    fn end(&self) -> Result<(), String> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.buf.len()))
        }
    }
}

/// Encodes a `by_id` value.
pub(crate) fn encode_record(r: &Record) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(64 + r.iocs.len() * 48));
    w.u8(RECORD_VERSION);
    w.i64(r.modified_ms);
    match r.valid_until_ms {
        None => w.u8(0),
        Some(v) => {
            w.u8(1);
            w.i64(v);
        }
    }
    match r.confidence {
        None => w.u8(0),
        Some(c) => {
            w.u8(1);
            w.u32(c as u32);
        }
    }
    w.opt_str(r.tlp.as_deref());
    w.str(&r.provider);
    w.opt_str(r.name.as_deref());
    w.u32(u32::try_from(r.iocs.len()).unwrap_or(u32::MAX));
    for ioc in &r.iocs {
        w.u8(ioc_code(ioc.ioc_type));
        w.str(&ioc.value);
        match &ioc.index {
            None => w.u8(0),
            Some(k) => {
                w.u8(match k.cf {
                    IndexCf::ByIoc => 1,
                    IndexCf::Cidr => 2,
                });
                w.bytes(&k.key);
            }
        }
    }
    w.0
}

/// Decodes a `by_id` value.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<Record, String> {
    let mut r = Reader { buf: bytes };
    let v = r.u8()?;
    if v != RECORD_VERSION {
        return Err(format!(
            "record version {v}, this build reads {RECORD_VERSION}"
        ));
    }
    let modified_ms = r.i64()?;
    let valid_until_ms = if r.flag()? { Some(r.i64()?) } else { None };
    let confidence = if r.flag()? {
        Some(r.u32()? as i32)
    } else {
        None
    };
    let tlp = r.opt_str()?;
    let provider = r.str()?;
    let name = r.opt_str()?;
    let n = r.u32()? as usize;
    // Every IOC takes at least 6 bytes: do not trust a count the input cannot hold.
    if n > r.buf.len() / 6 {
        return Err(format!("IOC count {n} exceeds the record size"));
    }
    let mut iocs = Vec::with_capacity(n);
    for _ in 0..n {
        let ioc_type = ioc_from_code(r.u8()?)?;
        let value = r.str()?;
        let index = match r.u8()? {
            0 => None,
            1 => Some(IndexKey {
                cf: IndexCf::ByIoc,
                key: r.bytes()?.to_vec(),
            }),
            2 => Some(IndexKey {
                cf: IndexCf::Cidr,
                key: r.bytes()?.to_vec(),
            }),
            c => return Err(format!("unknown index column family code {c}")),
        };
        iocs.push(RecordIoc {
            ioc_type,
            value,
            index,
        });
    }
    r.end()?;
    Ok(Record {
        modified_ms,
        valid_until_ms,
        confidence,
        tlp,
        provider,
        name,
        iocs,
    })
}

/// Encodes an id set (`ids` sorted and deduplicated by the caller).
pub(crate) fn encode_set<S: AsRef<str>>(ids: &[S]) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(4 + ids.len() * 48));
    w.u32(u32::try_from(ids.len()).unwrap_or(u32::MAX));
    for id in ids {
        w.str(id.as_ref());
    }
    w.0
}

/// Decodes an id set.
pub(crate) fn decode_set(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut r = Reader { buf: bytes };
    let n = r.u32()? as usize;
    if n > r.buf.len() / 4 {
        return Err(format!("id count {n} exceeds the value size"));
    }
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(r.str()?);
    }
    r.end()?;
    Ok(ids)
}

/// `meta` key of the format version.
pub(crate) const META_FORMAT: &[u8] = b"format";
/// `meta` key of the indicator count.
pub(crate) const META_COUNT: &[u8] = b"count";
/// Prefix of the `meta` keys of partition offsets.
pub(crate) const META_OFFSET: &[u8] = b"offset";

/// `meta` key of a partition's offset.
pub(crate) fn offset_key(partition: i32) -> Vec<u8> {
    let mut k = META_OFFSET.to_vec();
    k.extend_from_slice(&((partition as u32) ^ 0x8000_0000).to_be_bytes());
    k
}

/// Partition of an offset key (`None` if the key is not one).
pub(crate) fn partition_of(key: &[u8]) -> Option<i32> {
    let rest = key.strip_prefix(META_OFFSET)?;
    let b: [u8; 4] = rest.try_into().ok()?;
    Some((u32::from_be_bytes(b) ^ 0x8000_0000) as i32)
}

/// Decodes a fixed 8-byte little-endian integer value.
pub(crate) fn decode_u64(bytes: &[u8]) -> Result<u64, String> {
    let b: [u8; 8] = bytes
        .try_into()
        .map_err(|_| format!("expected 8 bytes, found {}", bytes.len()))?;
    Ok(u64::from_le_bytes(b))
}

/// Decodes a fixed 4-byte little-endian integer value.
pub(crate) fn decode_u32(bytes: &[u8]) -> Result<u32, String> {
    let b: [u8; 4] = bytes
        .try_into()
        .map_err(|_| format!("expected 4 bytes, found {}", bytes.len()))?;
    Ok(u32::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> Record {
        Record {
            modified_ms: 1_700_000_000_000,
            valid_until_ms: Some(-5),
            confidence: Some(-1),
            tlp: Some("amber".into()),
            provider: "feed".into(),
            name: None,
            iocs: vec![
                RecordIoc {
                    ioc_type: IocType::Ipv4,
                    value: "198.51.100.0/24".into(),
                    index: Some(IndexKey {
                        cf: IndexCf::Cidr,
                        key: vec![4, 24, 198, 51, 100, 0],
                    }),
                },
                RecordIoc {
                    ioc_type: IocType::Url,
                    value: "not a url".into(),
                    index: None,
                },
            ],
        }
    }

    #[test]
    fn record_round_trip() {
        let r = sample();
        assert_eq!(decode_record(&encode_record(&r)).unwrap(), r);
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let bytes = encode_record(&sample());
        for n in 0..bytes.len() {
            assert!(decode_record(&bytes[..n]).is_err(), "prefix {n}");
        }
        // Flip every byte to every value: must never panic (may or may not decode).
        for i in 0..bytes.len() {
            for v in [0u8, 1, 2, 3, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = decode_record(&b);
            }
        }
        let set = encode_set(&["a", "bc"]);
        assert_eq!(decode_set(&set).unwrap(), ["a", "bc"]);
        for n in 0..set.len() {
            assert!(decode_set(&set[..n]).is_err());
        }
        assert!(decode_set(&[0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn offset_keys_sort_by_partition() {
        let mut keys: Vec<_> = [-3, 5, 0, i32::MIN, i32::MAX, 1].map(offset_key).to_vec();
        keys.sort();
        let parts: Vec<_> = keys.iter().map(|k| partition_of(k).unwrap()).collect();
        assert_eq!(parts, [i32::MIN, -3, 0, 1, 5, i32::MAX]);
    }
}
