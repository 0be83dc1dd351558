//! Certificates for a PostgreSQL server with TLS, made fresh by each test process (rcgen): a test
//! CA, a server certificate with chosen names, a client certificate for `cert` authentication,
//! and a second CA that signed only a client certificate the server must refuse.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

pub use crate::postgres::CERT_USER;
use crate::postgres::ServerTls;

/// PEM texts of a test PKI.
pub struct TestPki {
    /// The CA that signed the server and client certificates.
    pub ca: String,
    /// A CA that signed nothing here (for "wrong CA" tests).
    pub other_ca: String,
    /// The server's certificate and key.
    pub server_cert: String,
    pub server_key: String,
    /// A client certificate for `CERT_USER` and its RSA key.
    pub client_cert: String,
    pub client_key: String,
    /// A client certificate for `CERT_USER` signed by `other_ca`, and its key.
    pub stranger_cert: String,
    pub stranger_key: String,
}

fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("a CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let certificate = params.self_signed(&key).expect("the CA signs itself");
    (certificate.pem(), Issuer::new(params, key))
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    // Clients get RSA keys, as Cloud SQL's client certificates have; servers ECDSA P-256.
    let key = match usage {
        ExtendedKeyUsagePurpose::ClientAuth => {
            KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("an RSA key")
        }
        _ => KeyPair::generate().expect("a leaf key"),
    };
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    let certificate = params.signed_by(&key, issuer).expect("the CA signs");
    (certificate.pem(), key.serialize_pem())
}

impl TestPki {
    /// A PKI whose server certificate names exactly `server_names` (DNS names or IP addresses,
    /// as subjectAltNames).
    pub fn generate(server_names: &[&str]) -> Self {
        let (ca, issuer) = new_ca("inlet test CA");
        let (other_ca, other_issuer) = new_ca("inlet unrelated CA");
        let (server_cert, server_key) = leaf(
            &issuer,
            "inlet test server",
            server_names,
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) =
            leaf(&issuer, CERT_USER, &[], ExtendedKeyUsagePurpose::ClientAuth);
        let (stranger_cert, stranger_key) = leaf(
            &other_issuer,
            CERT_USER,
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            ca,
            other_ca,
            server_cert,
            server_key,
            client_cert,
            client_key,
            stranger_cert,
            stranger_key,
        }
    }

    /// What `PgServer::start_tls` needs: the server's certificate and key, and this CA for clients.
    pub fn server_tls(&self) -> ServerTls<'_> {
        ServerTls {
            cert: &self.server_cert,
            key: &self.server_key,
            client_ca: &self.ca,
            options: "",
        }
    }
}
