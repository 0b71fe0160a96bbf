//! Certificates for test servers: a CA made for the occasion and a server
//! certificate it signed for `localhost` and 127.0.0.1, as PEM text.

use crate::KitError;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and a server certificate and key it signed.
#[derive(Clone, Debug)]
pub struct Certificates {
    /// The CA's certificate: what a client trusts.
    pub ca_pem: String,
    /// The server's certificate (for `localhost` and 127.0.0.1).
    pub cert_pem: String,
    /// The server's private key (PKCS #8).
    pub key_pem: String,
}

fn err(e: rcgen::Error) -> KitError {
    KitError::new(format!("cannot make a test certificate: {e}"))
}

fn ca(name: &str) -> Result<(String, Issuer<'static, KeyPair>), KitError> {
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).map_err(err)?;
    Ok((cert.pem(), Issuer::new(params, key)))
}

/// A new CA and a server certificate it signed for `localhost` and
/// 127.0.0.1.
pub fn server_certificates() -> Result<Certificates, KitError> {
    let (ca_pem, issuer) = ca("autosync test CA")?;
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &issuer).map_err(err)?;
    Ok(Certificates {
        ca_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The certificate of a CA that signed nothing a test server uses: a
/// client trusting only it must refuse the server.
pub fn other_ca_pem() -> Result<String, KitError> {
    Ok(ca("another CA")?.0)
}
