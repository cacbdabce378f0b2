//! Test certificates: a certificate authority made fresh for one test, and a server certificate
//! it signed for `localhost` and `127.0.0.1`, as PEM (for nats-server's config) and as a rustls
//! server configuration (for the local HTTPS stand-ins).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA and one server certificate signed by it.
#[derive(Debug)]
pub struct TestCa {
    /// The CA certificate, PEM: what a client is told to trust.
    pub ca_pem: String,
    /// The server certificate, PEM.
    pub server_pem: String,
    /// The server's private key, PEM (PKCS#8).
    pub server_key_pem: String,
    server_der: rustls::pki_types::CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

impl TestCa {
    /// A new CA and a server certificate for `localhost` and `127.0.0.1`.
    ///
    /// # Panics
    /// When rcgen refuses (it does not for these parameters).
    pub fn new() -> TestCa {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "frontline test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("a CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().expect("a server key");
        let server_cert =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server parameters")
                .signed_by(&server_key, &issuer)
                .expect("a server certificate");
        TestCa {
            ca_pem: ca_cert.pem(),
            server_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            server_der: server_cert.der().clone(),
            server_key_der: server_key.serialize_der(),
        }
    }

    /// A rustls server configuration presenting the server certificate.
    ///
    /// # Panics
    /// When rustls refuses (it does not for these certificates).
    pub fn server_config(&self) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![self.server_der.clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(self.server_key_der.clone().into()),
            )
            .expect("a server TLS configuration")
    }

    /// Writes `ca.pem`, `server.pem` and `server-key.pem` into `dir`; returns the CA's path.
    ///
    /// # Panics
    /// When the files cannot be written.
    pub fn write_to(&self, dir: &Path) -> PathBuf {
        std::fs::write(dir.join("server.pem"), &self.server_pem).expect("server.pem");
        std::fs::write(dir.join("server-key.pem"), &self.server_key_pem).expect("server-key.pem");
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &self.ca_pem).expect("ca.pem");
        ca
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}
