//! TLS for the `serve` and `proxy` listeners (`--tls-cert`, `--tls-key`):
//! PEM files, rustls with the ring provider. Handshakes run concurrently,
//! each with a deadline, so a slow or broken client never holds up others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::host::lograte::{Kind, allow};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a TLS configuration could not be built from the files given.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read.
    #[error("{}: cannot read the certificate ({error})", .path.display())]
    ReadCert {
        /// The file.
        path: PathBuf,
        /// Why.
        error: pem::Error,
    },
    /// The certificate file is not a PEM certificate chain.
    #[error("{}: not a PEM certificate chain ({error})", .path.display())]
    NotCertChain {
        /// The file.
        path: PathBuf,
        /// Why.
        error: pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{}: no certificate in the file", .path.display())]
    NoCert {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no usable PEM private key.
    #[error("{}: no usable PEM private key ({error})", .path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        error: pem::Error,
    },
    /// The certificate and the key do not match (or rustls refuses them).
    #[error("certificate and key do not work together: {0}")]
    CertKey(rustls::Error),
    /// The CA certificate file could not be read.
    #[error("{}: cannot read the CA certificate ({error})", .path.display())]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        error: pem::Error,
    },
    /// A certificate in the CA file is not PEM.
    #[error("{}: not a PEM certificate ({error})", .path.display())]
    NotCaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        error: pem::Error,
    },
    /// A certificate in the CA file cannot be a trust anchor.
    #[error("{}: unusable CA certificate ({error})", .path.display())]
    UnusableCa {
        /// The file.
        path: PathBuf,
        /// Why.
        error: rustls::Error,
    },
    /// The system has no trusted roots and no CA file was given.
    #[error("no trusted CA certificates on this system; pass --ca-cert FILE")]
    NoRoots,
    /// rustls refused its own default protocol versions.
    #[error("{0}")]
    Protocols(rustls::Error),
}

/// Builds an acceptor from a PEM certificate chain and a PEM private key.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|error| TlsError::ReadCert {
            path: cert.to_path_buf(),
            error,
        })?
        .collect::<Result<_, _>>()
        .map_err(|error| TlsError::NotCertChain {
            path: cert.to_path_buf(),
            error,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: cert.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|error| TlsError::Key {
        path: key.to_path_buf(),
        error,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(TlsError::CertKey)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A listener that yields connections after a successful TLS handshake.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

/// Handshakes under way, oldest first, each with the signal that ends it.
#[derive(Default)]
struct Pending {
    next: u64,
    order: std::collections::BTreeMap<u64, Arc<tokio::sync::Notify>>,
}

impl Pending {
    fn lock(this: &std::sync::Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
        this.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl TlsListener {
    /// Starts accepting on `tcp`. At most `max_pending` handshakes run at
    /// once: at that bound the oldest is abandoned (its connection closed)
    /// for the newcomer, so silent connections cannot pile up descriptors
    /// or keep a real client out. Established connections are the host's
    /// to count (`--max-connections`).
    pub fn new(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        max_pending: usize,
    ) -> std::io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let pending = Arc::new(std::sync::Mutex::new(Pending::default()));
        let max_pending = max_pending.max(1);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (id, abandon) = {
                    let mut p = Pending::lock(&pending);
                    if p.order.len() >= max_pending
                        && let Some((_, oldest)) = p.order.pop_first()
                    {
                        oldest.notify_one();
                    }
                    p.next += 1;
                    let id = p.next;
                    let abandon = Arc::new(tokio::sync::Notify::new());
                    p.order.insert(id, Arc::clone(&abandon));
                    (id, abandon)
                };
                let (acceptor, conn_tx, pending) =
                    (acceptor.clone(), tx.clone(), Arc::clone(&pending));
                tokio::spawn(async move {
                    let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let outcome = tokio::select! {
                        r = shake => Some(r),
                        () = abandon.notified() => None,
                    };
                    Pending::lock(&pending).order.remove(&id);
                    let why = match outcome {
                        Some(Ok(Ok(tls))) => {
                            let _ = conn_tx.send((tls, peer)).await;
                            return;
                        }
                        Some(Ok(Err(e))) => format!("TLS handshake failed: {e}"),
                        Some(Err(_)) => "TLS handshake timed out".to_string(),
                        None => "TLS handshake abandoned: too many under way".to_string(),
                    };
                    if allow(Kind::BadRequest) {
                        tracing::info!(%peer, "{why}");
                    }
                });
            }
        });
        Ok(TlsListener { rx, addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended: no more connections, ever.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// A client configuration for `wss://`: the system's trusted roots, plus the
/// certificates in `extra_ca` (PEM) when given — for hosts with a private or
/// self-signed certificate.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path).map_err(|error| TlsError::ReadCa {
            path: path.to_path_buf(),
            error,
        })?;
        let mut n = 0;
        for cert in certs {
            let cert = cert.map_err(|error| TlsError::NotCaCert {
                path: path.to_path_buf(),
                error,
            })?;
            roots.add(cert).map_err(|error| TlsError::UnusableCa {
                path: path.to_path_buf(),
                error,
            })?;
            n += 1;
        }
        if n == 0 {
            return Err(TlsError::NoCert {
                path: path.to_path_buf(),
            });
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Protocols)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens a WebSocket (`ws://` or `wss://`) with the given TLS client config.
pub async fn connect_ws(
    req: tokio_tungstenite::tungstenite::handshake::client::Request,
    config: Option<tokio_tungstenite::tungstenite::protocol::WebSocketConfig>,
    tls: Option<&Arc<ClientConfig>>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let connector = tls.map(|c| tokio_tungstenite::Connector::Rustls(Arc::clone(c)));
    tokio_tungstenite::connect_async_tls_with_config(req, config, false, connector)
        .await
        .map(|(ws, _)| ws)
}

/// A TCP connection to `authority` (`host:port`), wrapped in TLS when `tls`
/// is given (for the command call over `https`).
pub async fn connect_stream(
    authority: &str,
    tls: Option<&Arc<ClientConfig>>,
) -> std::io::Result<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let tcp = TcpStream::connect(authority).await?;
    let Some(cfg) = tls else {
        return Ok(tokio_tungstenite::MaybeTlsStream::Plain(tcp));
    };
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::other(format!("{host}: {e}")))?;
    let conn = tokio_rustls::TlsConnector::from(Arc::clone(cfg))
        .connect(name, tcp)
        .await?;
    Ok(tokio_tungstenite::MaybeTlsStream::Rustls(conn))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_files_are_named_with_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let missing = dir.path().join("missing.pem");
        let Err(e) = acceptor(&missing, &empty) else {
            panic!("a missing certificate was accepted")
        };
        assert!(matches!(e, TlsError::ReadCert { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(&format!(
                "{}: cannot read the certificate (",
                missing.display()
            )),
            "{e}"
        );
        let Err(e) = acceptor(&empty, &empty) else {
            panic!("an empty certificate file was accepted")
        };
        assert_eq!(
            e.to_string(),
            format!("{}: no certificate in the file", empty.display())
        );
        let e = client_config(Some(&empty)).unwrap_err();
        assert!(matches!(e, TlsError::NoCert { .. }), "{e:?}");
        let e = client_config(Some(&missing)).unwrap_err();
        assert!(
            e.to_string().starts_with(&format!(
                "{}: cannot read the CA certificate (",
                missing.display()
            )),
            "{e}"
        );
    }
}
