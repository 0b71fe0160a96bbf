//! One connection to the directory: ldap3's asynchronous API driven by a
//! current-thread tokio runtime the session owns (the connector contract
//! is synchronous; several operations in flight on one connection, and
//! the persistent searches of later change triggers, fit the same
//! runtime). TLS is rustls with the ring provider: the system's CAs plus
//! `ca_file`, or no verification when `tls_verify = false`.
//!
//! Opening a session connects, binds, and reads the root DSE (the
//! controls the server supports) and the subschema entry (how each
//! attribute's values are typed). Every operation waits at most
//! `timeout_ms`.

use super::ber;
use super::config::{Bind, LdapSettings, Transport};
use super::discovery::shown_url;
use super::schema::DirSchema;
use autosync_connector::{ConnectorError, ConnectorErrorKind};
use ldap3::controls::RawControl;
use ldap3::result::LdapError;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapResult, Mod, ResultEntry, Scope};
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::runtime::Runtime;

/// The paged-results control's OID (RFC 2696).
pub const PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
/// The post-read control's OID (RFC 4527).
pub const POST_READ: &str = "1.3.6.1.1.13.2";
/// The assertion control's OID (RFC 4528).
pub const ASSERTION: &str = "1.3.6.1.1.12";

/// What an operation that reached the server answered, or why it did not.
pub type OpResult<T> = Result<T, LdapError>;

/// A search read message by message.
pub type Stream = ldap3::SearchStream<'static, String, Vec<String>>;

/// A write operation sent with others at once ([`Session::pipeline`]).
pub enum Op {
    Add {
        dn: String,
        attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)>,
        controls: Vec<RawControl>,
    },
    Modify {
        dn: String,
        mods: Vec<Mod<Vec<u8>>>,
        controls: Vec<RawControl>,
    },
    Delete {
        dn: String,
        controls: Vec<RawControl>,
    },
}

impl Op {
    async fn send(self, ldap: &mut Ldap, timeout: Duration) -> OpResult<LdapResult> {
        let ldap = ldap.with_timeout(timeout);
        match self {
            Op::Add {
                dn,
                attrs,
                controls,
            } => ldap.with_controls(controls).add(&dn, attrs).await,
            Op::Modify { dn, mods, controls } => {
                ldap.with_controls(controls).modify(&dn, mods).await
            }
            Op::Delete { dn, controls } => ldap.with_controls(controls).delete(&dn).await,
        }
    }
}

/// An open, bound connection.
pub struct Session {
    rt: Runtime,
    ldap: Ldap,
    timeout: Duration,
    /// The controls the server says it supports.
    controls: HashSet<String>,
    pub schema: DirSchema,
    /// The server as messages name it (the URL).
    pub server: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// The crypto provider: ring.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trusted CAs, read once.
static SYSTEM_ROOTS: LazyLock<Vec<CertificateDer<'static>>> = LazyLock::new(|| {
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        tracing::debug!(errors = ?found.errors, "some system CA certificates could not be read");
    }
    found.certs
});

/// Accepts any certificate (`tls_verify = false`), still checking that
/// the handshake is signed by the certificate's key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
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
        dss: &rustls::DigitallySignedStruct,
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

fn config_error(s: &LdapSettings, message: String) -> ConnectorError {
    ConnectorError::new(
        ConnectorErrorKind::Configuration,
        format!("MA `{}`: {message}", s.ma),
    )
}

/// The TLS configuration of `s`.
fn tls_config(s: &LdapSettings) -> Result<Arc<ClientConfig>, ConnectorError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(s, format!("TLS: {e}")))?;
    let config = if s.tls_verify {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(SYSTEM_ROOTS.iter().cloned());
        if let Some(path) = &s.ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    config_error(s, format!("cannot read ca_file `{}`: {e}", path.display()))
                })?;
            if certs.is_empty() {
                return Err(config_error(
                    s,
                    format!("ca_file `{}` holds no PEM certificate", path.display()),
                ));
            }
            let (_, ignored) = roots.add_parsable_certificates(certs);
            if ignored > 0 {
                tracing::warn!(ma = %s.ma, ca_file = %path.display(), ignored, "certificates of ca_file that could not be used");
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// A result code's name (RFC 4511).
pub fn code_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        18 => "inappropriateMatching",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        71 => "affectsMultipleDSAs",
        80 => "other",
        122 => "assertionFailed",
        _ => "unknown result code",
    }
}

/// A result as text: `noSuchObject (32): the server's message`.
pub fn describe(r: &LdapResult) -> String {
    let mut out = format!("{} ({})", code_name(r.rc), r.rc);
    if !r.text.is_empty() {
        out.push_str(": ");
        out.push_str(r.text.trim());
    }
    out
}

/// Whether a result code says the server (not the request) is the
/// problem: the step stops, the run is retried later.
pub fn server_trouble(rc: u32) -> bool {
    matches!(rc, 51 | 52 | 80)
}

impl Session {
    /// Connect, bind and read what the session needs from the server.
    pub fn open(s: &LdapSettings) -> Result<Session, ConnectorError> {
        let down = |e: &dyn std::fmt::Display| {
            ConnectorError::new(
                ConnectorErrorKind::ServerDown,
                format!(
                    "MA `{}`: cannot connect to {}: {e}",
                    s.ma,
                    shown_url(&s.url)
                ),
            )
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| down(&e))?;
        let mut conn = LdapConnSettings::new()
            .set_conn_timeout(s.connect_timeout)
            .set_starttls(s.start_tls);
        if s.transport == Transport::Tls || s.start_tls {
            conn = conn.set_config(tls_config(s)?);
        }
        let url = s.url.clone();
        let ldap = rt
            .block_on(async move {
                let (conn, ldap) = LdapConnAsync::with_settings(conn, &url).await?;
                tokio::spawn(async move {
                    if let Err(e) = conn.drive().await {
                        tracing::debug!(error = %e, "LDAP connection ended");
                    }
                });
                Ok::<_, LdapError>(ldap)
            })
            .map_err(|e| down(&e))?;
        let mut session = Session {
            rt,
            ldap,
            timeout: s.timeout,
            controls: HashSet::new(),
            schema: DirSchema::default(),
            server: shown_url(&s.url),
        };
        session.bind(s)?;
        session.read_root_dse(s)?;
        Ok(session)
    }

    fn bind(&mut self, s: &LdapSettings) -> Result<(), ConnectorError> {
        let timeout = self.timeout;
        let ldap = &mut self.ldap;
        let (who, result) = match &s.bind {
            Bind::Anonymous => return Ok(()),
            Bind::Simple { dn, password } => (
                format!("`{dn}`"),
                self.rt
                    .block_on(async { ldap.with_timeout(timeout).simple_bind(dn, password).await }),
            ),
            Bind::External => (
                "SASL EXTERNAL".to_owned(),
                self.rt
                    .block_on(async { ldap.with_timeout(timeout).sasl_external_bind().await }),
            ),
        };
        let result = result.map_err(|e| {
            ConnectorError::new(
                ConnectorErrorKind::ServerDown,
                format!("MA `{}`: bind as {who} at {}: {e}", s.ma, shown_url(&s.url)),
            )
        })?;
        if result.rc == 0 {
            return Ok(());
        }
        let kind = if server_trouble(result.rc) {
            ConnectorErrorKind::ServerDown
        } else {
            ConnectorErrorKind::Configuration
        };
        Err(ConnectorError::new(
            kind,
            format!(
                "MA `{}`: {} refused the bind as {who}: {}",
                s.ma,
                shown_url(&s.url),
                describe(&result)
            ),
        ))
    }

    /// The supported controls, then the schema (a schema that cannot be
    /// read leaves every attribute text).
    fn read_root_dse(&mut self, s: &LdapSettings) -> Result<(), ConnectorError> {
        let attrs = ["supportedControl", "subschemaSubentry"];
        let root = self
            .search("", Scope::Base, "(objectClass=*)", &attrs, Vec::new())
            .map_err(|e| self.broken(s, "read the root DSE", &e))?;
        let root = root.0.into_iter().next().and_then(|e| ber::entry(e.0).ok());
        let text = |e: &ber::RawEntry, a: &str| -> Vec<String> {
            e.values(a)
                .map(|vs| {
                    vs.iter()
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut subschema = "cn=Subschema".to_owned();
        if let Some(e) = &root {
            self.controls = text(e, "supportedControl").into_iter().collect();
            if let Some(s) = text(e, "subschemaSubentry").into_iter().next() {
                subschema = s;
            }
        }
        let found = self
            .search(
                &subschema,
                Scope::Base,
                "(objectClass=subschema)",
                &[
                    "attributeTypes",
                    "ldapSyntaxes",
                    "objectClasses",
                    "matchingRules",
                ],
                Vec::new(),
            )
            .map_err(|e| self.broken(s, "read the schema", &e))?;
        match found.0.into_iter().next().map(|e| ber::entry(e.0)) {
            Some(Ok(e)) => {
                self.schema = DirSchema::parse(
                    &text(&e, "attributeTypes"),
                    &text(&e, "ldapSyntaxes"),
                    &text(&e, "objectClasses"),
                )
                .with_matching_rules(&text(&e, "matchingRules"));
            }
            _ => {
                tracing::debug!(ma = %s.ma, subschema = %subschema, result = %describe(&found.1), "the schema could not be read: every attribute is text")
            }
        }
        Ok(())
    }

    /// The step error of an operation that did not get an answer.
    pub fn broken(&self, s: &LdapSettings, what: &str, e: &LdapError) -> ConnectorError {
        ConnectorError::new(
            ConnectorErrorKind::Connectivity,
            format!("MA `{}`: cannot {what} at {}: {e}", s.ma, self.server),
        )
    }

    /// Whether the connection is gone.
    pub fn is_closed(&mut self) -> bool {
        self.ldap.is_closed()
    }

    /// Whether the server still answers on this connection: one read of
    /// the root DSE, no attribute asked (a kept session is proved so
    /// before it is used again: the server may have closed it while idle).
    pub fn answers(&mut self) -> bool {
        matches!(
            self.search("", Scope::Base, "(objectClass=*)", &["1.1"], Vec::new()),
            Ok((_, r)) if r.rc == 0
        )
    }

    pub fn supports(&self, control: &str) -> bool {
        self.controls.contains(control)
    }

    /// Run `f` on the session's runtime (its spawned tasks run meanwhile).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Spawn `f` on the session's runtime: it runs while the session
    /// blocks on something.
    pub fn spawn<F>(&self, f: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        drop(self.rt.spawn(f));
    }

    /// A search whose results are read one by one ([`Session::next`]),
    /// intermediate responses included; each read waits at most
    /// `timeout_ms` when `timed` (a persistent search is not).
    pub fn stream(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
        controls: Vec<RawControl>,
        timed: bool,
    ) -> OpResult<Stream> {
        let timeout = self.timeout;
        let ldap = &mut self.ldap;
        self.rt.block_on(async move {
            if timed {
                ldap.with_timeout(timeout);
            }
            ldap.with_controls(controls)
                .streaming_search(base, scope, filter, attrs)
                .await
        })
    }

    /// The next message of a search (`None`: its result came: see
    /// [`Session::finish`]).
    pub fn next(&self, stream: &mut Stream) -> OpResult<Option<ResultEntry>> {
        self.rt.block_on(stream.next())
    }

    /// The search's result (a stream not read to its end is given up).
    pub fn finish(&self, stream: &mut Stream) -> LdapResult {
        self.rt.block_on(stream.finish())
    }

    /// One search (entries only; references are skipped) with `controls`.
    pub fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        controls: Vec<RawControl>,
    ) -> OpResult<(Vec<ResultEntry>, LdapResult)> {
        let timeout = self.timeout;
        let ldap = &mut self.ldap;
        let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
        let result = self.rt.block_on(async move {
            ldap.with_timeout(timeout)
                .with_controls(controls)
                .search(base, scope, filter, attrs)
                .await
        })?;
        Ok((result.0, result.1))
    }

    pub fn add(
        &mut self,
        dn: &str,
        attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)>,
        controls: Vec<RawControl>,
    ) -> OpResult<LdapResult> {
        let timeout = self.timeout;
        let ldap = &mut self.ldap;
        self.rt.block_on(async move {
            ldap.with_timeout(timeout)
                .with_controls(controls)
                .add(dn, attrs)
                .await
        })
    }

    pub fn modify(&mut self, dn: &str, mods: Vec<Mod<Vec<u8>>>) -> OpResult<LdapResult> {
        let timeout = self.timeout;
        let ldap = &mut self.ldap;
        self.rt
            .block_on(async move { ldap.with_timeout(timeout).modify(dn, mods).await })
    }

    pub fn delete(&mut self, dn: &str) -> OpResult<LdapResult> {
        let timeout = self.timeout;
        let ldap = &mut self.ldap;
        self.rt
            .block_on(async move { ldap.with_timeout(timeout).delete(dn).await })
    }

    /// Sends `ops` on the connection with up to `window` of them in
    /// flight at once (the server may apply those in any order): each
    /// one's answer, in the order of `ops` (`None`: its task ended
    /// without one).
    pub fn pipeline(&mut self, ops: Vec<Op>, window: usize) -> Vec<Option<OpResult<LdapResult>>> {
        let timeout = self.timeout;
        let ldap = self.ldap.clone();
        let mut answers: Vec<Option<OpResult<LdapResult>>> = Vec::new();
        answers.resize_with(ops.len(), || None);
        self.rt.block_on(async move {
            let mut pending = ops.into_iter().enumerate();
            let mut running = tokio::task::JoinSet::new();
            loop {
                while running.len() < window.max(1) {
                    let Some((i, op)) = pending.next() else { break };
                    let mut handle = ldap.clone();
                    running.spawn(async move { (i, op.send(&mut handle, timeout).await) });
                }
                match running.join_next().await {
                    Some(Ok((i, answer))) => answers[i] = Some(answer),
                    Some(Err(e)) => tracing::debug!(error = %e, "an LDAP operation's task ended"),
                    None => break,
                }
            }
            answers
        })
    }

    pub fn modify_dn(
        &mut self,
        dn: &str,
        rdn: &str,
        new_superior: Option<&str>,
    ) -> OpResult<LdapResult> {
        let timeout = self.timeout;
        let ldap = &mut self.ldap;
        self.rt.block_on(async move {
            ldap.with_timeout(timeout)
                .modifydn(dn, rdn, true, new_superior)
                .await
        })
    }
}
