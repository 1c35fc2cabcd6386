//! Requests to other servers: discovered, checked against the policy and the IP blocklist,
//! signed with `X-Matrix`, sent over TLS.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::{Value, json};
use tandem_core::Homeserver;

use crate::discovery::{Discovery, Overrides, ip_literal};
use crate::policy::IpRange;
use crate::{FedError, FederationConfig};

pub struct Client {
    http: reqwest::Client,
    discovery: Discovery,
    policy: crate::ServerPolicy,
}

impl Client {
    pub fn new(config: &FederationConfig) -> Result<Self, FedError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| FedError::Internal(format!("TLS set-up: {e}")))?;
        let tls = if config.verify_tls {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        };
        let blocklist: Vec<IpRange> = config.ip_range_blocklist.iter().filter_map(|r| IpRange::parse(r)).collect();
        let overrides = Overrides::new(blocklist);
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .dns_resolver(Arc::new(overrides.clone()))
            // The server-server API never redirects; following one would let a server send us
            // anywhere (plain HTTP, a private address). `.well-known` follows its own, checked.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(config.request_timeout)
            .user_agent(concat!("Tandem/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FedError::Internal(format!("HTTP client: {e}")))?;
        let dns = match hickory_resolver::TokioResolver::builder_tokio() {
            Ok(builder) => Some(builder.build()),
            Err(e) => {
                tracing::warn!("no DNS configuration for SRV lookups: {e}");
                None
            }
        };
        let network = crate::discovery::Network { http: http.clone(), dns, overrides: overrides.clone() };
        let mut discovery = Discovery::new(Box::new(network));
        discovery.overrides = overrides;
        Ok(Client { http, discovery, policy: config.policy.clone() })
    }

    fn remote_err(server: &str, message: impl Into<String>) -> FedError {
        FedError::Remote { server: server.to_owned(), status: None, errcode: None, message: message.into() }
    }

    /// Resolves `destination` and refuses what the policy or the IP blocklist forbids.
    async fn target(&self, destination: &str) -> Result<crate::discovery::Target, FedError> {
        if !self.policy.allows(destination) {
            return Err(FedError::forbidden(format!("federation with {destination} is not allowed")));
        }
        let target = self
            .discovery
            .resolve(destination)
            .await
            .ok_or_else(|| Self::remote_err(destination, "not a valid server name"))?;
        let url = reqwest::Url::parse(&target.base_url).map_err(|e| Self::remote_err(destination, e.to_string()))?;
        let host = target.connect_host.clone().unwrap_or_else(|| url.host_str().unwrap_or_default().to_owned());
        let port = url.port().unwrap_or(8448);
        let ips: Vec<IpAddr> = match ip_literal(&host) {
            Some(ip) => vec![ip],
            None => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| Self::remote_err(destination, format!("cannot resolve {host}: {e}")))?
                .map(|a| a.ip())
                .collect(),
        };
        if let Some(ip) = ips.iter().find(|ip| self.discovery.overrides.blocked(**ip)) {
            return Err(Self::remote_err(destination, format!("{ip} is in the outbound IP blocklist")));
        }
        Ok(target)
    }

    /// A signed request; the JSON answer, or the other server's error.
    pub async fn request(
        &self,
        hs: &Homeserver,
        method: Method,
        destination: &str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value, FedError> {
        let response = self.send_signed(hs, method, destination, path_and_query, body).await?;
        read(destination, response).await
    }

    /// A signed request; the answer, its body unread (media).
    pub async fn send_signed(
        &self,
        hs: &Homeserver,
        method: Method,
        destination: &str,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, FedError> {
        let auth = x_matrix(hs, method.as_str(), destination, path_and_query, body)?;
        let span = tracing::debug_span!("federation_request", %destination, path = %path_and_query);
        let _enter = span.enter();
        self.send(method, destination, path_and_query, body, Some(auth)).await
    }

    /// An unsigned request (the key API), where discovery says the server lives.
    pub async fn unsigned(
        &self,
        method: Method,
        destination: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, FedError> {
        let response = self.send_unsigned(method, destination, path, body).await?;
        read(destination, response).await
    }

    /// An unsigned request; the answer, its body unread (legacy media).
    pub async fn send_unsigned(
        &self,
        method: Method,
        destination: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, FedError> {
        self.send(method, destination, path, body, None).await
    }

    /// A request where discovery says `destination` lives, with this `Authorization`.
    async fn send(
        &self,
        method: Method,
        destination: &str,
        path_and_query: &str,
        body: Option<&Value>,
        authorization: Option<String>,
    ) -> Result<reqwest::Response, FedError> {
        let target = self.target(destination).await?;
        let mut req =
            self.http.request(method, format!("{}{path_and_query}", target.base_url)).header("Host", &target.host);
        if let Some(auth) = authorization {
            req = req.header("Authorization", auth);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.map_err(|e| Self::remote_err(destination, e.to_string()))
    }
}

impl Client {
    /// A URL outside federation, refused unless it is http(s), or when its host is an address
    /// of the IP blocklist (names are checked by the resolver).
    fn outside_url(&self, url: &str) -> Result<reqwest::Url, FedError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| Self::remote_err(url, e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Self::remote_err(url, "not an http(s) URL"));
        }
        let host = parsed.host_str().unwrap_or_default();
        if let Some(ip) = ip_literal(host).filter(|ip| self.discovery.overrides.blocked(*ip)) {
            return Err(Self::remote_err(host, format!("{ip} is in the outbound IP blocklist")));
        }
        Ok(parsed)
    }

    /// A JSON `POST` to a URL outside federation (a push gateway), unsigned.
    pub async fn post_url(&self, url: &str, body: &Value) -> Result<Value, FedError> {
        let parsed = self.outside_url(url)?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let response =
            self.http.post(parsed).json(body).send().await.map_err(|e| Self::remote_err(&host, e.to_string()))?;
        read_at_most(&host, response, MAX_GATEWAY_RESPONSE_BYTES).await
    }

    /// A `GET` of a URL outside federation (where another server's media redirects to),
    /// unsigned, no redirect followed; its body unread.
    pub async fn get_url(&self, url: &str) -> Result<reqwest::Response, FedError> {
        let parsed = self.outside_url(url)?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        self.http.get(parsed).send().await.map_err(|e| Self::remote_err(&host, e.to_string()))
    }
}

/// The longest a request to another server may take by default, answer included (an endless
/// answer is cut here; `[federation] request_timeout_secs`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read from another server (Synapse's own limit on `send_join`, the largest
/// answer federation has, is 500 MiB; rooms that large are not in this server's reach yet).
pub const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;

/// The largest answer read from a push gateway (its answer is a list of rejected pushkeys).
pub const MAX_GATEWAY_RESPONSE_BYTES: usize = 64 * 1024;

async fn read(destination: &str, response: reqwest::Response) -> Result<Value, FedError> {
    read_at_most(destination, response, MAX_RESPONSE_BYTES).await
}

pub(crate) async fn read_at_most(
    destination: &str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Value, FedError> {
    let status = response.status();
    let Some(bytes) = read_bytes(destination, &mut response, limit).await? else {
        return Err(Client::remote_err(destination, format!("the answer is larger than {limit} bytes")));
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    Err(FedError::Remote {
        server: destination.to_owned(),
        status: Some(status.as_u16()),
        errcode: body.get("errcode").and_then(Value::as_str).map(str::to_owned),
        message: body.get("error").and_then(Value::as_str).unwrap_or("request failed").to_owned(),
    })
}

/// A body read whole; `None` once it passes `limit` bytes (the rest is never read).
pub(crate) async fn read_bytes(
    destination: &str,
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<Option<Vec<u8>>, FedError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Client::remote_err(destination, e.to_string()))? {
        if bytes.len() + chunk.len() > limit {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

/// The `Authorization` header of a request: this server's signature over the method, the
/// path, both server names and the body.
pub fn x_matrix(
    hs: &Homeserver,
    method: &str,
    destination: &str,
    path_and_query: &str,
    body: Option<&Value>,
) -> Result<String, FedError> {
    let origin = hs.server_name();
    let mut request = json!({ "method": method, "uri": path_and_query, "origin": origin, "destination": destination });
    if let Some(body) = body {
        request["content"] = body.clone();
    }
    let mut obj = ruma::canonical_json::try_from_json_map(request.as_object().cloned().unwrap_or_default())
        .map_err(|e| FedError::Internal(format!("request is not canonical JSON: {e}")))?;
    let key = hs.signing_key();
    key.sign_json(origin, &mut obj).map_err(|e| FedError::Internal(e.to_string()))?;
    let sig = serde_json::to_value(&obj)
        .ok()
        .and_then(|v| {
            v.pointer(&format!("/signatures/{}/{}", pointer_escape(origin), pointer_escape(&key.key_id()))).cloned()
        })
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or_else(|| FedError::Internal("signing produced no signature".into()))?;
    Ok(format!(r#"X-Matrix origin="{origin}",destination="{destination}",key="{}",sig="{sig}""#, key.key_id()))
}

/// A JSON pointer segment for `s`.
pub(crate) fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// For tests with self-signed peers only (`verify_tls = false`): any certificate is accepted,
/// but the handshake's signatures are still checked, so the connection is still encrypted to
/// whoever holds the certificate's key.
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub use tandem_core::server_name::server_of;
