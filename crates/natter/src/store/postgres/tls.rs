//! TLS to PostgreSQL, with the meanings libpq gives the URL's `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey` (docs/operations.md lists the
//! few differences):
//!
//! - `disable`: no TLS.
//! - `prefer` (the default, as in libpq): TLS when the server offers it,
//!   plain TCP when it does not.
//! - `require`: TLS or no connection.
//! - `verify-ca`: TLS, and the server's certificate must chain to a
//!   trusted root.
//! - `verify-full`: that, and the certificate must name the host the URL
//!   connects to.
//!
//! `prefer` and `require` encrypt but do not authenticate the server
//! (anyone on the path can pose as it), unless `sslrootcert` names roots:
//! then, as in libpq, they verify as `verify-ca` does. The trusted roots
//! are the PEM file `sslrootcert` names, or the system's store, which
//! only `verify-full` may use (see [`modes`]).
//!
//! `sslcert` and `sslkey` name the PEM files of a client certificate and
//! its key, for a server that authenticates by certificate (`cert` in
//! pg_hba.conf); they go together, since libpq's default files in the
//! home folder are not looked for. An encrypted key (`sslpassword`) and
//! revocation lists are refused rather than ignored.
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require`, so
//! [`split`] takes these settings out of the URL, the caller gives
//! tokio-postgres the plain mode, and the verification is the rustls
//! configuration built here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the server's certificate must prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verify {
    /// Nothing: encryption only (`prefer`, `require` without roots).
    Nothing,
    /// That it chains to a trusted root (`verify-ca`).
    Chain,
    /// That, and that it names the host (`verify-full`).
    ChainAndName,
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Roots {
    /// The system's certificate store.
    System,
    /// A PEM file of one or more certificates.
    File(PathBuf),
}

/// The URL's TLS settings, read the way libpq reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsSettings {
    /// The mode tokio-postgres is given: whether to ask for TLS at all.
    pub mode: SslMode,
    pub verify: Verify,
    pub roots: Roots,
    /// The client certificate's and key's files, if the URL names them.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// `url` without its TLS parameters (`sslmode`, `sslrootcert`,
/// `sslcert`, `sslkey`), and what they ask for; or why they cannot be
/// used. The caller gives tokio-postgres the plain mode itself.
pub(super) fn split(url: &str) -> Result<(String, TlsSettings), String> {
    // The query begins after the user part, whose password may hold `?`.
    let host_at = super::pool::host_start(url);
    let (base, query) = match url[host_at..].find('?') {
        Some(at) => (&url[..host_at + at], &url[host_at + at + 1..]),
        None => (url, ""),
    };
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8()
            .map(|t| t.into_owned())
    };
    let mut kept = Vec::new();
    let mut sslmode = None;
    let mut rootcert = None;
    let (mut cert, mut cert_key) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // tokio-postgres decodes keys too: `ssl%6Dode` is `sslmode`.
        let key = decode(key).map_err(|_| "a parameter's name is not UTF-8".to_owned())?;
        let value = decode(value).map_err(|_| format!("{key}: not UTF-8 once decoded"))?;
        match key.as_str() {
            "sslmode" => sslmode = Some(value),
            "sslrootcert" => rootcert = Some(value),
            "sslcert" => cert = Some(PathBuf::from(value)),
            "sslkey" => cert_key = Some(PathBuf::from(value)),
            "sslpassword" | "sslcrl" | "sslcrldir" => {
                return Err(format!(
                    "{key}: encrypted keys and revocation lists are not supported; give natter a key file without a passphrase"
                ));
            }
            _ => kept.push(pair),
        }
    }
    let client = match (cert, cert_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("sslcert and sslkey: name both files, or neither".into()),
    };
    let roots = match rootcert.as_deref() {
        None | Some("system") => Roots::System,
        Some("") => return Err("sslrootcert: name a PEM file, or `system`".into()),
        Some(path) => Roots::File(PathBuf::from(path)),
    };
    let (mode, verify) = modes(sslmode.as_deref(), &roots, rootcert.is_some())?;
    let url = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    Ok((
        url,
        TlsSettings {
            mode,
            verify,
            roots,
            client,
        },
    ))
}

/// What `sslmode` asks of the connection and of the server's
/// certificate, with `roots` named outright or not.
///
/// As in libpq: a roots file makes `prefer` and `require` check the
/// chain too; `sslrootcert=system` makes `verify-full` the default and
/// refuses anything less, and `verify-ca` wants a file. The system's
/// roots are public CAs, which sign certificates for anyone's own
/// names, so a chain to them without the name proves nothing.
fn modes(sslmode: Option<&str>, roots: &Roots, named: bool) -> Result<(SslMode, Verify), String> {
    let file = matches!(roots, Roots::File(_));
    let at_least_chain = if file { Verify::Chain } else { Verify::Nothing };
    Ok(match (sslmode, named && !file) {
        (None | Some("verify-full"), true) | (Some("verify-full"), false) => {
            (SslMode::Require, Verify::ChainAndName)
        }
        (Some(mode @ ("disable" | "prefer" | "require" | "verify-ca")), true) => {
            return Err(format!(
                "sslmode {mode}: with sslrootcert=system only verify-full is allowed, since any public CA would do"
            ));
        }
        (Some("disable"), false) => (SslMode::Disable, Verify::Nothing),
        (None | Some("prefer"), false) => (SslMode::Prefer, at_least_chain),
        (Some("require"), false) => (SslMode::Require, at_least_chain),
        (Some("verify-ca"), false) if file => (SslMode::Require, Verify::Chain),
        (Some("verify-ca"), false) => {
            return Err(
                "sslmode verify-ca: name the roots with sslrootcert (a PEM file); the system's public CAs would vouch for anyone's certificate".into(),
            );
        }
        (Some(other), _) => {
            return Err(format!(
                "sslmode {other:?}: use disable, prefer, require, verify-ca or verify-full"
            ));
        }
    })
}

/// The connector for `settings`: reads the roots and the client
/// certificate now, so a missing or empty file stops the node at start,
/// not at its first query.
pub(super) fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let lax = |chain| Lax {
        chain,
        algorithms: provider.signature_verification_algorithms,
    };
    let verifying = match settings.verify {
        Verify::ChainAndName => builder.with_root_certificates(roots(&settings.roots)?),
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(lax(None))),
        Verify::Chain => {
            let roots = Arc::new(roots(&settings.roots)?);
            let chain = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("TLS roots: {e}"))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(lax(Some(chain))))
        }
    };
    let config = match &settings.client {
        None => verifying.with_no_client_auth(),
        Some((cert, key)) => {
            let (chain, key) = client_certificate(cert, key)?;
            verifying
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("sslcert and sslkey: {e}"))?
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The certificate chain in `cert` and the key in `key`, PEM files both.
fn client_certificate(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let shown = cert.display();
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("sslcert {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslcert {shown}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("sslcert {shown}: no certificate in the file"));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("sslkey {}: {e}", key.display()))?;
    Ok((chain, key))
}

/// The trusted roots `roots` names.
fn roots(roots: &Roots) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("sslrootcert {shown}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("sslrootcert {shown}: {e}"))?;
                store
                    .add(cert)
                    .map_err(|e| format!("sslrootcert {shown}: {e}"))?;
            }
            if store.is_empty() {
                return Err(format!("sslrootcert {shown}: no certificate in the file"));
            }
        }
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "none found".to_owned(), ToString::to_string);
                return Err(format!(
                    "the system's trusted certificates: {why}; name a PEM file with sslrootcert"
                ));
            }
        }
    }
    Ok(store)
}

/// The checks rustls's own verifier cannot be told to make:
/// `prefer` and `require` without roots accept any certificate (libpq's
/// encryption without authentication, `chain: None`), `verify-ca` makes
/// the whole of rustls's check except that the certificate names the
/// host. rustls checks the chain before the name, so a name mismatch
/// means the chain was good. The handshake's signatures are checked
/// against the certificate presented either way.
#[derive(Debug)]
struct Lax {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lax {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> (String, TlsSettings) {
        split(url).unwrap()
    }

    #[test]
    fn no_sslmode_prefers_tls_without_verifying_as_libpq_does() {
        let (url, s) = settings("postgres://natter@db/natter");
        assert_eq!(url, "postgres://natter@db/natter");
        assert_eq!(
            (s.mode, s.verify, s.roots),
            (SslMode::Prefer, Verify::Nothing, Roots::System)
        );
    }

    #[test]
    fn tls_parameters_leave_the_url_and_the_others_stay() {
        let (url, s) = settings(
            "postgres://n:pw@db:5432/natter?application_name=a&sslmode=verify-full&connect_timeout=3",
        );
        assert_eq!(
            url,
            "postgres://n:pw@db:5432/natter?application_name=a&connect_timeout=3"
        );
        assert_eq!((s.mode, s.verify), (SslMode::Require, Verify::ChainAndName));
        let (url, s) = settings("postgres://db/natter?sslmode=disable");
        assert_eq!(url, "postgres://db/natter");
        assert_eq!(s.mode, SslMode::Disable);
        // A `?` in the password is not where the query starts.
        let (url, s) = settings("postgres://u:p?ss@db/natter?sslmode=require");
        assert_eq!(url, "postgres://u:p?ss@db/natter");
        assert_eq!(s.mode, SslMode::Require);
        // Names are read decoded, as tokio-postgres reads them.
        let (url, s) = settings("postgres://db/natter?ssl%6Dode=disable");
        assert_eq!(url, "postgres://db/natter");
        assert_eq!(s.mode, SslMode::Disable);
    }

    #[test]
    fn named_roots_make_require_check_the_chain() {
        let (url, s) =
            settings("postgres://db/natter?sslmode=require&sslrootcert=%2Fetc%2Fca%20one.pem");
        assert_eq!(url, "postgres://db/natter");
        assert_eq!((s.mode, s.verify), (SslMode::Require, Verify::Chain));
        assert_eq!(s.roots, Roots::File("/etc/ca one.pem".into()));
        assert_eq!(s.client, None);
        let (_, s) = settings("postgres://db/natter?sslrootcert=/ca.pem");
        assert_eq!((s.mode, s.verify), (SslMode::Prefer, Verify::Chain));
        let (_, s) = settings("postgres://db/natter?sslmode=verify-ca&sslrootcert=/ca.pem");
        assert_eq!((s.mode, s.verify), (SslMode::Require, Verify::Chain));
        let (url, s) =
            settings("postgres://db/natter?sslcert=/c.pem&sslkey=/k.pem&sslmode=verify-full");
        assert_eq!(url, "postgres://db/natter");
        assert_eq!(s.client, Some(("/c.pem".into(), "/k.pem".into())));
    }

    #[test]
    fn the_system_roots_go_with_verify_full_only() {
        for url in [
            "postgres://db/natter?sslrootcert=system",
            "postgres://db/natter?sslmode=verify-full&sslrootcert=system",
            "postgres://db/natter?sslmode=verify-full",
        ] {
            let (_, s) = settings(url);
            assert_eq!(
                (s.mode, s.verify, s.roots),
                (SslMode::Require, Verify::ChainAndName, Roots::System),
                "{url}"
            );
        }
        for url in [
            "postgres://db/natter?sslmode=require&sslrootcert=system",
            "postgres://db/natter?sslmode=prefer&sslrootcert=system",
            "postgres://db/natter?sslmode=disable&sslrootcert=system",
            "postgres://db/natter?sslmode=verify-ca&sslrootcert=system",
            "postgres://db/natter?sslmode=verify-ca",
        ] {
            assert!(split(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn unknown_modes_half_a_client_certificate_and_empty_roots_are_refused() {
        for url in [
            "postgres://db/natter?sslmode=allow",
            "postgres://db/natter?sslmode=VERIFY-FULL",
            "postgres://db/natter?sslcert=/c.pem",
            "postgres://db/natter?sslkey=/k.pem",
            "postgres://db/natter?sslcert=/c.pem&sslkey=/k.pem&sslpassword=x",
            "postgres://db/natter?sslcrl=/crl.pem",
            "postgres://db/natter?sslrootcert=",
        ] {
            assert!(split(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn a_roots_or_certificate_file_that_is_missing_or_holds_no_certificate_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [dir.path().join("missing.pem"), empty] {
            let settings = TlsSettings {
                mode: SslMode::Require,
                verify: Verify::ChainAndName,
                roots: Roots::File(path.clone()),
                client: None,
            };
            let why = connector(&settings)
                .err()
                .expect("a connector without roots");
            assert!(why.contains("sslrootcert"), "{why}");
        }
        let no_certificate = TlsSettings {
            mode: SslMode::Require,
            verify: Verify::Nothing,
            roots: Roots::System,
            client: Some((
                dir.path().join("missing.pem"),
                dir.path().join("missing.key"),
            )),
        };
        let why = connector(&no_certificate)
            .err()
            .expect("a connector without its certificate");
        assert!(why.contains("sslcert"), "{why}");
    }
}
