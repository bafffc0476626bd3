//! The TLS settings of `https` connections: which rustls client configuration verifies the
//! server (by default the webpki-roots trust anchors, ALPN `http/1.1`, the ring provider), and
//! the name it verifies.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

use crate::error::Error;
use crate::proto::RequestError;

/// The rustls client configuration an `https` connection uses. Cheap to clone.
///
/// The default trusts the Mozilla root store shipped in `webpki-roots`, verifies the server's
/// name (DNS names and IP addresses), and offers ALPN `http/1.1`, with rustls's ring provider.
/// Certificate verification cannot be turned off here; a test or private CA is trusted with
/// [`with_root_certificates`](Self::with_root_certificates), and anything else rustls can do
/// is reached with [`from_client_config`](Self::from_client_config).
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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(Error::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig {
            client: Some(Arc::new(client)),
        })
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
