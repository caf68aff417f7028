//! TLS settings shared by the backends that speak it (tcp, evloop): the
//! rustls configurations made from [`TlsOptions`], on ring's
//! cryptography, and how a TLS failure reads as an io error. Each backend
//! drives rustls's connection state machine its own way (`tcp::tls`,
//! `evloop::tls`).

use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::options::TlsOptions;

/// Why a TLS setting could not be used.
fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server's rustls configuration from its PEM files.
pub(crate) fn server_config(opts: &TlsOptions) -> io::Result<Arc<ServerConfig>> {
    let (Some(cert), Some(key)) = (&opts.cert, &opts.key) else {
        return Err(bad(
            "a TLS server needs tls.cert and tls.key (PEM files)".into()
        ));
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(format!("tls.cert {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("tls.cert {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(bad(format!(
            "tls.cert {}: no certificate in it",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| bad(format!("tls.key {}: {e}", key.display())))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("tls: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(format!("tls: the certificate and key: {e}")))?;
    Ok(Arc::new(config))
}

/// A client's rustls configuration: the authorities it trusts.
fn client_config(opts: &TlsOptions) -> io::Result<Arc<ClientConfig>> {
    let Some(ca) = &opts.ca else {
        return Err(bad(
            "a TLS client needs tls.ca (a PEM file of the authorities to trust)".into(),
        ));
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)
        .map_err(|e| bad(format!("tls.ca {}: {e}", ca.display())))?
    {
        let cert = cert.map_err(|e| bad(format!("tls.ca {}: {e}", ca.display())))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("tls.ca {}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(bad(format!(
            "tls.ca {}: no certificate in it",
            ca.display()
        )));
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("tls: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client's configuration and the name it checks the server's
/// certificate against (`host`, the endpoint's, unless the options name
/// another), for either backend's dialer.
pub(crate) fn client(
    opts: &TlsOptions,
    host: &str,
) -> io::Result<(Arc<ClientConfig>, ServerName<'static>)> {
    Ok((client_config(opts)?, server_name(opts, host)?))
}

/// The name a client checks the server's certificate against.
fn server_name(opts: &TlsOptions, host: &str) -> io::Result<ServerName<'static>> {
    let name = opts.server_name.as_deref().unwrap_or(host);
    ServerName::try_from(name.to_owned()).map_err(|e| bad(format!("tls.server_name {name:?}: {e}")))
}

/// A TLS failure as an io error: the reason its connection closes.
pub(crate) fn error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("tls: {e}"))
}
