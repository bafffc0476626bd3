//! The TLS settings of `https` connections: which rustls client configuration verifies the
//! server (by default the webpki-roots trust anchors, ALPN `http/1.1`, the ring provider; with
//! the `platform-verifier` feature, optionally the operating system's verifier), and the name
//! it verifies. It builds configurations only: the session itself lives in `io::tls`.

use std::sync::{Arc, OnceLock};

use rustls::client::WantsClientCert;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ConfigBuilder, RootCertStore, WantsVerifier};

use crate::error::Error;
use crate::proto::RequestError;

/// The rustls client configuration an `https` connection uses. Cheap to clone.
///
/// The default trusts the Mozilla root store shipped in `webpki-roots`, verifies the server's
/// name (DNS names and IP addresses), and offers ALPN `http/1.1`, with rustls's ring provider.
/// Certificate verification cannot be turned off here; a test or private CA is trusted with
/// [`with_root_certificates`](Self::with_root_certificates), and anything else rustls can do
/// is reached with [`from_client_config`](Self::from_client_config). With the
/// `platform-verifier` feature, `TlsConfig::platform_verifier()` verifies with the operating
/// system's verifier and trust store instead.
#[derive(Clone, Default)]
pub struct TlsConfig {
    /// `None`: the default configuration, built (once per process) at first use.
    client: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.client {
            None => f.write_str("TlsConfig(default)"),
            Some(client) => f
                .debug_struct("TlsConfig")
                .field("alpn", &client.alpn_protocols)
                .finish_non_exhaustive(),
        }
    }
}

impl PartialEq for TlsConfig {
    /// Both the default, or the same configuration object (rustls configurations have no
    /// equality of their own).
    fn eq(&self, other: &Self) -> bool {
        match (&self.client, &other.client) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for TlsConfig {}

impl TlsConfig {
    /// Trusts exactly `roots` (a private CA, or certificates made for a test), with the
    /// default protocol versions, the ring provider and ALPN `http/1.1`.
    ///
    /// # Errors
    ///
    /// When the provider supports no safe protocol version (never with ring).
    pub fn with_root_certificates(roots: RootCertStore) -> Result<Self, Error> {
        let verifying = Self::ring_builder()?.with_root_certificates(roots);
        Ok(Self::finish(verifying))
    }

    /// Verifies servers with the operating system's verifier and trust store
    /// (`rustls-platform-verifier`), with the default protocol versions, the ring provider and
    /// ALPN `http/1.1`. On Linux and the other Unix systems but macOS and Android, that is
    /// webpki verification against the system's CA certificates (`SSL_CERT_FILE`,
    /// `SSL_CERT_DIR`, else the usual files such as `/etc/ssl/certs`), read when this is
    /// called; on Windows and macOS, the system's own verifier.
    ///
    /// ```no_run
    /// use dugong::{Config, HttpConnection, Origin, Scheme, TlsConfig};
    ///
    /// let config = Config::default().tls(TlsConfig::platform_verifier()?);
    /// let conn = HttpConnection::open(&Origin::new(Scheme::Https, "example.com", 443), config)?;
    /// # let _ = conn;
    /// # Ok::<(), dugong::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Tls`] when the verifier cannot be made: on Linux, when not one CA
    ///   certificate could be loaded from the system store.
    #[cfg(feature = "platform-verifier")]
    pub fn platform_verifier() -> Result<Self, Error> {
        use rustls_platform_verifier::BuilderVerifierExt;

        let verifying = Self::ring_builder()?
            .with_platform_verifier()
            .map_err(Error::Tls)?;
        Ok(Self::finish(verifying))
    }

    /// A client configuration builder with the ring provider and its safe default protocol
    /// versions, waiting for a verifier.
    fn ring_builder() -> Result<ConfigBuilder<ClientConfig, WantsVerifier>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(Error::Tls)
    }

    /// Finishes a configuration: no client certificate, ALPN `http/1.1`.
    fn finish(verifying: ConfigBuilder<ClientConfig, WantsClientCert>) -> Self {
        let mut client = verifying.with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsConfig {
            client: Some(Arc::new(client)),
        }
    }

    /// Uses a caller's own rustls configuration as it is (its roots, verifier, ALPN and
    /// provider).
    pub fn from_client_config(client: Arc<ClientConfig>) -> Self {
        TlsConfig {
            client: Some(client),
        }
    }

    /// The rustls configuration to connect with.
    pub(crate) fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        if let Some(client) = &self.client {
            return Ok(Arc::clone(client));
        }
        static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        if let Some(client) = DEFAULT.get() {
            return Ok(Arc::clone(client));
        }
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let built = Self::with_root_certificates(roots)?.client_config()?;
        Ok(Arc::clone(DEFAULT.get_or_init(|| built)))
    }
}

/// The name the server's certificate must carry: a DNS name, or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned())
        .map_err(|_| Error::InvalidRequest(RequestError::InvalidHost))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_roots_offer_http_1_1() {
        let tls = TlsConfig::with_root_certificates(RootCertStore::empty()).expect("config");
        let client = tls.client_config().expect("client config");
        assert_eq!(client.alpn_protocols, [b"http/1.1".to_vec()]);
        assert_ne!(tls, TlsConfig::default());
    }

    /// Needs CA certificates in the system store (Debian's `ca-certificates`).
    #[cfg(feature = "platform-verifier")]
    #[test]
    fn platform_verifier_builds_with_the_system_store() {
        let tls = TlsConfig::platform_verifier().expect("the platform verifier");
        let client = tls.client_config().expect("client config");
        assert_eq!(client.alpn_protocols, [b"http/1.1".to_vec()]);
        assert_eq!(tls, tls.clone());
    }
}
