//! TLS material for the local stand-ins that speak TLS: the syslog simulator's TLS listener and
//! the broker's TLS front ([`crate::broker::TlsBroker`]).

use std::time::SystemTime;

use tokio_native_tls::native_tls;

/// A self-signed certificate and the acceptor serving it. Clients trust it through
/// [`TlsMaterial::cert_pem`] (it is its own CA).
#[derive(Clone)]
pub struct TlsMaterial {
    /// Accepts TLS connections with the certificate.
    pub acceptor: tokio_native_tls::TlsAcceptor,
    /// The certificate, PEM.
    pub cert_pem: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// A self-signed certificate for `localhost`, `127.0.0.1` and `::1` (EC P-256, valid for a
    /// day) and the acceptor serving it.
    pub fn self_signed() -> Result<TlsMaterial, String> {
        use openssl::asn1::Asn1Time;
        use openssl::bn::{BigNum, MsbOption};
        use openssl::ec::{EcGroup, EcKey};
        use openssl::hash::MessageDigest;
        use openssl::nid::Nid;
        use openssl::pkey::PKey;
        use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
        use openssl::x509::{X509Builder, X509NameBuilder};

        let e =
            |what: &'static str| move |err: openssl::error::ErrorStack| format!("{what}: {err}");
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(e("curve"))?;
        let key =
            PKey::from_ec_key(EcKey::generate(&group).map_err(e("key"))?).map_err(e("key"))?;
        let mut name = X509NameBuilder::new().map_err(e("name"))?;
        name.append_entry_by_text("CN", "localhost")
            .map_err(e("name"))?;
        name.append_entry_by_text("O", "secflow devstack")
            .map_err(e("name"))?;
        let name = name.build();
        let mut b = X509Builder::new().map_err(e("certificate"))?;
        b.set_version(2).map_err(e("version"))?;
        let mut serial = BigNum::new().map_err(e("serial"))?;
        serial
            .rand(64, MsbOption::MAYBE_ZERO, false)
            .map_err(e("serial"))?;
        let serial = serial.to_asn1_integer().map_err(e("serial"))?;
        b.set_serial_number(&serial).map_err(e("serial"))?;
        b.set_subject_name(&name).map_err(e("subject"))?;
        b.set_issuer_name(&name).map_err(e("issuer"))?;
        b.set_pubkey(&key).map_err(e("public key"))?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let not_before =
            Asn1Time::from_unix(i64::try_from(now).unwrap_or(0) - 3600).map_err(e("validity"))?;
        b.set_not_before(&not_before).map_err(e("validity"))?;
        let not_after = Asn1Time::days_from_now(1).map_err(e("validity"))?;
        b.set_not_after(&not_after).map_err(e("validity"))?;
        let ca = BasicConstraints::new()
            .critical()
            .ca()
            .build()
            .map_err(e("extension"))?;
        b.append_extension(ca).map_err(e("extension"))?;
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .ip("::1")
            .build(&b.x509v3_context(None, None))
            .map_err(e("subject alternative name"))?;
        b.append_extension(san).map_err(e("extension"))?;
        b.sign(&key, MessageDigest::sha256()).map_err(e("sign"))?;
        let cert = b.build();
        let cert_pem = cert.to_pem().map_err(e("PEM"))?;
        let key_pem = key.private_key_to_pem_pkcs8().map_err(e("PEM"))?;
        let identity = native_tls::Identity::from_pkcs8(&cert_pem, &key_pem)
            .map_err(|err| format!("TLS identity: {err}"))?;
        let acceptor =
            native_tls::TlsAcceptor::new(identity).map_err(|err| format!("TLS acceptor: {err}"))?;
        Ok(TlsMaterial {
            acceptor: tokio_native_tls::TlsAcceptor::from(acceptor),
            cert_pem: String::from_utf8_lossy(&cert_pem).into_owned(),
        })
    }
}
