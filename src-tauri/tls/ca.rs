//! The per-install certificate authority behind `https://localhost`, which Safari needs
//! (it refuses plain http to this machine from https pages). Unlike mkcert's CA it is
//! name-constrained: it can sign certificates for `localhost`, `127.0.0.0/8` and `::1`
//! only, so even a leaked key cannot impersonate a real site. Its key lives in the OS
//! keychain like every other secret; leaf certificates are issued in memory at start.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use secrecy::{ExposeSecret, SecretString};
use time::{Duration, OffsetDateTime};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// How long a leaf certificate is valid: browsers refuse more than 398 days.
pub const LEAF_DAYS: i64 = 397;
const CA_YEARS: i64 = 10;
const CA_NAME: &str = "Protogate local CA";

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot create the local certificate authority: {0}")]
    Create(rcgen::Error),
    #[error("the stored certificate authority cannot be read; remove it with `protogate tls untrust` and `protogate secrets delete protogate-tls-ca`")]
    Stored,
}

/// The CA: its certificate (public) and key (secret, kept only in the keychain).
pub struct LocalCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The CA's name and constraints, the same each time so that leaves issued later chain
/// to the stored certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "Protogate");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([127, 0, 0, 0], 8)),
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                128,
            )),
        ],
        excluded_subtrees: vec![],
    });
    params
}

impl LocalCa {
    /// A new CA with a fresh ECDSA P-256 key, valid for ten years.
    pub fn generate() -> Result<Self, CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::Create)?;
        let mut params = ca_params();
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(365 * CA_YEARS);
        let cert = params.self_signed(&key).map_err(CaError::Create)?;
        Ok(LocalCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key,
        })
    }

    /// The CA as the keychain keeps it: its certificate, then its key, both PEM.
    pub fn to_secret(&self) -> SecretString {
        SecretString::from(format!("{}{}", self.cert_pem, self.key.serialize_pem()))
    }

    pub fn from_secret(secret: &SecretString) -> Result<Self, CaError> {
        let blocks = pem::parse_many(secret.expose_secret()).map_err(|_| CaError::Stored)?;
        let find = |tag: &str| {
            blocks
                .iter()
                .find(|b| b.tag() == tag)
                .ok_or(CaError::Stored)
        };
        let cert = find("CERTIFICATE")?;
        let key =
            KeyPair::try_from(find("PRIVATE KEY")?.contents()).map_err(|_| CaError::Stored)?;
        Ok(LocalCa {
            cert_pem: pem::encode(cert),
            cert_der: CertificateDer::from(cert.contents().to_vec()),
            key,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// SHA-256 of the certificate, as trust dialogs show it.
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.cert_der);
        digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid for
    /// [`LEAF_DAYS`], signed by this CA, with its chain and its key.
    pub fn issue(
        &self,
        names: &[&str],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::Create)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        params.distinguished_name = name;
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName((*n).try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()
            .map_err(CaError::Create)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(LEAF_DAYS);
        let issuer = Issuer::new(ca_params(), &self.key);
        let leaf = params.signed_by(&key, &issuer).map_err(CaError::Create)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![leaf.der().clone(), self.cert_der.clone()], key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_survives_the_keychain_round_trip() {
        let ca = LocalCa::generate().unwrap();
        let again = LocalCa::from_secret(&ca.to_secret()).unwrap();
        assert_eq!(ca.fingerprint(), again.fingerprint());
        assert!(
            !format!("{again:?}").contains("PRIVATE"),
            "Debug shows no key"
        );
        let (chain, _) = again.issue(&["localhost", "127.0.0.1", "::1"]).unwrap();
        assert_eq!(chain.len(), 2, "leaf and CA");
    }
}
