//! Delivery over SMTP (lettre, async) and webhooks (ureq on a thread of
//! its own). Every send has a time limit; a failure is a value, never a panic.
//! Each channel sends from its own queue ([`crate::queue`]).

use crate::config::{Security, SmtpConfig, WebhookConfig};
use crate::render::Rendered;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Extra time given to a send beyond its own time limit before the caller
/// stops waiting for it.
const GRACE: Duration = Duration::from_secs(1);

/// Where a notice went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Channel {
    /// `host:port` of the SMTP server.
    Email { server: String },
    /// Index in `webhooks` and the URL without its secret parts.
    Webhook { index: usize, target: String },
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Email { server } => write!(f, "email via {server}"),
            Channel::Webhook { index, target } => write!(f, "webhook {index} ({target})"),
        }
    }
}

/// Why a send failed (never holds a secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the email could not be built: {0}")]
    EmailBuild(String),
    #[error("CA file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("SMTP server {server}: {message}")]
    Smtp { server: String, message: String },
    #[error("webhook {target}: {message}")]
    Webhook { target: String, message: String },
    #[error("webhook {target} answered HTTP {status}")]
    WebhookStatus { target: String, status: u16 },
    #[error("{channel}: no answer within {timeout:?}")]
    Timeout { channel: String, timeout: Duration },
    /// The notice could not be queued for its channel (or its channel's
    /// task ended before sending it).
    #[error("{channel}: not sent: {reason}")]
    NotQueued { channel: String, reason: String },
    /// The service stopped before the channel could send it (a stop waits
    /// [`crate::queue::STOP_WITHIN`] at most): not delivered.
    #[error("{channel}: not sent: the service stopped before this channel could send it")]
    Abandoned { channel: String },
}

/// What happened on one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelOutcome {
    pub channel: Channel,
    pub result: Result<(), SendError>,
}

fn build_message(smtp: &SmtpConfig, r: &Rendered) -> Result<Message, SendError> {
    let bad = |what: &str, e: &dyn fmt::Display| SendError::EmailBuild(format!("{what}: {e}"));
    let from: Mailbox = smtp
        .from
        .parse()
        .map_err(|e| bad(&format!("sender `{}`", smtp.from), &e))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(r.subject.as_str())
        .message_id(None)
        .header(ContentType::TEXT_PLAIN);
    for to in &smtp.to {
        let mailbox: Mailbox = to
            .parse()
            .map_err(|e| bad(&format!("recipient `{to}`"), &e))?;
        builder = builder.to(mailbox);
    }
    builder.body(r.text.clone()).map_err(|e| bad("message", &e))
}

fn build_transport(smtp: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let server = format!("{}:{}", smtp.host, smtp.port());
    let tls = match smtp.security {
        Security::None => Tls::None,
        Security::Starttls | Security::Tls => {
            let mut params = TlsParameters::builder(smtp.host.clone());
            if let Some(ca) = &smtp.ca_file {
                params = params.add_root_certificate(load_ca(ca)?);
            }
            let params = params.build().map_err(|e| SendError::Smtp {
                server: server.clone(),
                message: format!("TLS set-up failed: {e}"),
            })?;
            if smtp.security == Security::Tls {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port())
        .tls(tls)
        .timeout(Some(smtp.timeout.0));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    Ok(builder.build())
}

/// Reads a PEM file of CA certificates.
pub(crate) fn load_ca(path: &Path) -> Result<Certificate, SendError> {
    let err = |message: String| SendError::CaFile {
        path: path.display().to_string(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| err(format!("cannot be read: {e}")))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(err(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Certificate::from_pem(&pem)
        .map_err(|e| err(format!("is not a valid PEM certificate file: {e}")))
}

/// Sends `r` by email.
pub async fn send_email(smtp: &SmtpConfig, r: &Rendered) -> Result<(), SendError> {
    let server = format!("{}:{}", smtp.host, smtp.port());
    let message = build_message(smtp, r)?;
    let transport = build_transport(smtp)?;
    let limit = smtp.timeout.0.saturating_add(GRACE);
    match tokio::time::timeout(limit, transport.send(message)).await {
        Ok(Ok(_response)) => Ok(()),
        Ok(Err(e)) => Err(SendError::Smtp {
            server,
            message: e.to_string(),
        }),
        Err(_) => Err(SendError::Timeout {
            channel: format!("SMTP server {server}"),
            timeout: smtp.timeout.0,
        }),
    }
}

/// POSTs `body` (JSON) to one webhook. The request runs on a thread of
/// its own, not on the runtime's blocking pool: a send given up at a stop
/// (this future dropped) leaves that thread to its time limit without
/// holding the runtime's shutdown, nor the process's exit, that long.
pub async fn send_webhook(hook: &WebhookConfig, body: Vec<u8>) -> Result<(), SendError> {
    let target = hook.target();
    let timeout = hook.timeout.0;
    let owned = hook.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("autosync-webhook".into())
        .spawn(move || {
            let _ = tx.send(post(&owned, &body));
        })
        .map_err(|e| SendError::Webhook {
            target: target.clone(),
            message: format!("cannot start the sending thread: {e}"),
        })?;
    match tokio::time::timeout(timeout.saturating_add(GRACE), rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(SendError::Webhook {
            target,
            message: "the sending thread failed".into(),
        }),
        Err(_) => Err(SendError::Timeout {
            channel: format!("webhook {target}"),
            timeout,
        }),
    }
}

fn post(hook: &WebhookConfig, body: &[u8]) -> Result<(), SendError> {
    let target = hook.target();
    let url = hook.url.expose();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(hook.timeout.0))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("autosync/", env!("CARGO_PKG_VERSION")))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .new_agent();
    let mut request = agent.post(url).header("content-type", "application/json");
    for (name, value) in &hook.headers {
        request = request.header(name.as_str(), value.expose());
    }
    match request.send(body) {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(SendError::WebhookStatus {
            target,
            status: response.status().as_u16(),
        }),
        Err(ureq::Error::Timeout(_)) => Err(SendError::Timeout {
            channel: format!("webhook {target}"),
            timeout: hook.timeout.0,
        }),
        Err(e) => {
            // An error may quote the URL, whose path can be the secret.
            let mut message = e.to_string().replace(url, &target);
            for value in hook.headers.values() {
                if !value.expose().is_empty() {
                    message = message.replace(value.expose(), "<redacted>");
                }
            }
            Err(SendError::Webhook { target, message })
        }
    }
}
