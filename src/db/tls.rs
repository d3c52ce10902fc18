//! Every connection to PostgreSQL opens here, encrypted as the database URL's `sslmode` says,
//! with libpq's meanings (https://www.postgresql.org/docs/current/libpq-ssl.html):
//!
//! - `disable`: plain TCP;
//! - `prefer` (the default): TLS when the server offers it, plain otherwise; the certificate is
//!   not checked (encryption against a passive listener, not against an impostor);
//! - `require`: TLS or no connection; the certificate is not checked, unless `sslrootcert`
//!   names a CA file, which makes it `verify-ca`;
//! - `verify-ca`: TLS, and the server's certificate must chain to a trusted CA;
//! - `verify-full`: that, and it must name the host connected to.
//!
//! Trusted CAs are those in the PEM file `sslrootcert` (a managed database's CA bundle), or
//! else the Mozilla roots compiled in (webpki-roots). `pg_dump` and `pg_restore` (backups) read
//! the same URL through libpq, so they agree. Only the URL form
//! (`postgres://user:password@host:port/db?sslmode=verify-full&sslrootcert=/etc/ca.pem`) is
//! read for these two settings.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use diesel::ConnectionError;
use diesel_async::AsyncPgConnection;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsStream};
use tokio_postgres::{NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the URL asks of the connection's encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A database URL, split into what tokio-postgres reads and the TLS settings read here.
#[derive(Debug)]
pub struct Target {
    pub config: tokio_postgres::Config,
    pub mode: Mode,
    pub root_cert: Option<PathBuf>,
}

/// Reads `url`: `sslmode` and `sslrootcert` are taken out of its query (tokio-postgres knows
/// neither `verify-*` nor `sslrootcert`), the rest is tokio-postgres's to read.
pub fn parse(url: &str) -> Result<Target> {
    let (mut mode, mut root_cert) = (Mode::Prefer, None);
    let rest = match url.split_once('?') {
        Some((base, query)) if url.contains("://") => {
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let value = percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|_| anyhow!("the database URL's {key} is not UTF-8"))?;
                match key {
                    "sslmode" => {
                        mode = match &*value {
                            "disable" => Mode::Disable,
                            "allow" | "prefer" => Mode::Prefer,
                            "require" => Mode::Require,
                            "verify-ca" => Mode::VerifyCa,
                            "verify-full" => Mode::VerifyFull,
                            other => {
                                return Err(anyhow!(
                                    "the database URL's sslmode is {other:?}: use disable, prefer, require, verify-ca or verify-full"
                                ));
                            }
                        }
                    }
                    "sslrootcert" => root_cert = Some(PathBuf::from(&*value)),
                    _ => kept.push(pair),
                }
            }
            if kept.is_empty() {
                base.to_owned()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        }
        _ => url.to_owned(),
    };
    // A CA file turns `require` into `verify-ca`, as in libpq.
    if mode == Mode::Require && root_cert.is_some() {
        mode = Mode::VerifyCa;
    }
    let mut config = tokio_postgres::Config::from_str(&rest)
        .map_err(|e| anyhow!("the database URL cannot be read: {e}"))?;
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    Ok(Target {
        config,
        mode,
        root_cert,
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls settings for `target` (not used with `disable`).
fn client_config(target: &Target) -> Result<ClientConfig> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS settings")?;
    let verifier: Arc<dyn ServerCertVerifier> = match target.mode {
        Mode::Disable | Mode::Prefer | Mode::Require => Arc::new(AnyCertificate(provider)),
        Mode::VerifyCa | Mode::VerifyFull => {
            let mut roots = RootCertStore::empty();
            match &target.root_cert {
                Some(path) => {
                    for cert in CertificateDer::pem_file_iter(path)
                        .with_context(|| format!("reading sslrootcert {}", path.display()))?
                    {
                        let cert = cert
                            .with_context(|| format!("reading sslrootcert {}", path.display()))?;
                        roots
                            .add(cert)
                            .with_context(|| format!("a CA in {}", path.display()))?;
                    }
                    if roots.is_empty() {
                        return Err(anyhow!(
                            "sslrootcert {} holds no certificate",
                            path.display()
                        ));
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("TLS certificate checks")?;
            if target.mode == Mode::VerifyFull {
                chain
            } else {
                Arc::new(AnyName(chain))
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// `prefer` and `require` without a CA: any certificate (the handshake's signatures are still
/// checked, so the session is bound to the key the server showed).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the name in it may be any.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
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
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A diesel connection to `url`.
pub async fn connect(url: &str) -> Result<AsyncPgConnection, ConnectionError> {
    let target = parse(url).map_err(|e| ConnectionError::BadConnection(format!("{e:#}")))?;
    if target.mode == Mode::Disable {
        return diesel_over(&target.config, NoTls).await;
    }
    let tls =
        client_config(&target).map_err(|e| ConnectionError::BadConnection(format!("{e:#}")))?;
    diesel_over(&target.config, MakeRustlsConnect::new(tls)).await
}

async fn diesel_over<T>(
    config: &tokio_postgres::Config,
    tls: T,
) -> Result<AsyncPgConnection, ConnectionError>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: TlsStream + Unpin + Send + 'static,
{
    let (client, connection) = config
        .connect(tls)
        .await
        .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

/// A tokio-postgres client on `url` (COPY and prepared statements), its connection driven by a
/// task of its own.
pub async fn connect_client(url: &str) -> Result<tokio_postgres::Client> {
    let target = parse(url)?;
    if target.mode == Mode::Disable {
        return client_over(&target.config, NoTls).await;
    }
    client_over(
        &target.config,
        MakeRustlsConnect::new(client_config(&target)?),
    )
    .await
}

async fn client_over<T>(config: &tokio_postgres::Config, tls: T) -> Result<tokio_postgres::Client>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, connection) = config
        .connect(tls)
        .await
        .context("connecting to the database")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection ended");
        }
    });
    Ok(client)
}

/// A blocking diesel connection (migrations and setup, from a thread outside any runtime): the
/// async connection runs on a small runtime kept for this, which the wrapper then blocks on.
pub fn connect_blocking(
    url: &str,
) -> Result<diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>> {
    static RUNTIME: std::sync::LazyLock<std::io::Result<tokio::runtime::Runtime>> =
        std::sync::LazyLock::new(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("db-setup")
                .enable_all()
                .build()
        });
    let runtime = RUNTIME
        .as_ref()
        .map_err(|e| anyhow!("starting the database setup runtime: {e}"))?;
    let conn = runtime
        .block_on(connect(url))
        .map_err(|e| anyhow!("connecting to the database: {e}"))?;
    // Inside the runtime's context the wrapper blocks on its handle, so the connection's task
    // (spawned on it above) keeps being driven.
    let _inside = runtime.enter();
    Ok(conn.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_read_and_the_rest_is_left_to_tokio_postgres() {
        let t = parse("postgres://u:p@db.example:6432/portal").unwrap();
        assert_eq!(t.mode, Mode::Prefer);
        assert_eq!(t.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(t.config.get_dbname(), Some("portal"));
        let t = parse(
            "postgres://u:p@db.example/portal?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(t.mode, Mode::VerifyFull);
        assert_eq!(t.config.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            t.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(t.config.get_application_name(), Some("x"));
        assert_eq!(
            parse("postgres://db.example/p?sslmode=disable")
                .unwrap()
                .mode,
            Mode::Disable
        );
        assert_eq!(
            parse("postgres://db.example/p?sslmode=verify-ca")
                .unwrap()
                .mode,
            Mode::VerifyCa
        );
        // A CA file makes `require` check the chain, as libpq does.
        assert_eq!(
            parse("postgres://db.example/p?sslmode=require&sslrootcert=/ca.pem")
                .unwrap()
                .mode,
            Mode::VerifyCa
        );
        assert!(parse("postgres://db.example/p?sslmode=sometimes").is_err());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let t = parse("postgres://db.example/p?sslmode=verify-full&sslrootcert=/no/such/ca.pem")
            .unwrap();
        let e = client_config(&t).unwrap_err();
        assert!(format!("{e:#}").contains("/no/such/ca.pem"), "{e:#}");
        let t = parse("postgres://db.example/p?sslmode=verify-full").unwrap();
        assert!(client_config(&t).is_ok(), "the compiled-in roots");
    }

    #[test]
    fn every_connection_of_the_portal_opens_here() {
        // A plain `establish` or `tokio_postgres::connect` elsewhere would ignore sslmode.
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        let mut files = 0;
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("db/tls.rs")
                {
                    files += 1;
                    let source = std::fs::read_to_string(&path).unwrap();
                    let code = source.split("#[cfg(test)]").next().unwrap_or("");
                    for needle in ["::establish(", "tokio_postgres::connect(", "NoTls"] {
                        assert!(
                            !code.contains(needle),
                            "{} opens a connection with {needle}: use db::tls",
                            path.display()
                        );
                    }
                }
            }
        }
        assert!(files > 50);
    }
}
