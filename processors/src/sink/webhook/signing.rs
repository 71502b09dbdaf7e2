//! `X-Secflow-Signature: t=<unix seconds>,v1=<hex hmac_sha256(secret, t + "." + body)>`.
//!
//! With two secrets (rotation) both signatures are sent: `t=…,v1=<current>,v1=<previous>`; a
//! receiver accepts the request when any `v1` matches a secret it knows, compares in constant
//! time, and rejects timestamps outside its tolerance and signatures it has seen before.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// `hex(hmac_sha256(secret, "<timestamp>." + body))`.
pub fn signature(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// The header value: `t=<timestamp>,v1=<sig>` with one `v1` per secret, in order.
pub fn header_value(secrets: &[Secret], timestamp: u64, body: &[u8]) -> String {
    let mut v = format!("t={timestamp}");
    for s in secrets {
        v.push_str(",v1=");
        v.push_str(&signature(s, timestamp, body));
    }
    v
}
