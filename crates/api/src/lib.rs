//! The autosync HTTP API over the running service, on loopback, guarded by
//! a bearer token:
//!
//! - `GET /api/v1/status`: every MA's state and queue ([`Status`]);
//! - `GET /api/v1/events` (with [`router_with`] and an [`EventFeed`]): the
//!   service's events as Server-Sent Events, each `event: <type>`,
//!   `id: <seq>`, `data: <json>` ([`Published`]); a follower that fell
//!   behind gets `event: lagged` with how many it missed, and the stream
//!   goes on; keep-alive comments every 15 s; the stream ends when the
//!   service stops;
//! - `POST /api/v1/queue` with `{"ma": "hr", "profile": "delta-import"}`
//!   (optional `exclusive`, `run_immediate`): queue a run;
//! - `POST /api/v1/mas/{ma}/{action}` and `POST /api/v1/{action}` (every MA,
//!   or the whole service), optional body `{"by": "..."}`: an operator's
//!   [`Control`] (`start`, `stop`, `cancel`, `clear-queue`, `pause`,
//!   `resume`, `approve`, `reject`, `maintenance`, `end-maintenance`),
//!   answered with [`ControlAnswer`];
//! - `POST /api/v1/reload` (with a reloader): reload the configuration
//!   file, answered with [`ControlAnswer`] or `reload-refused` with why.
//!
//! Every error is an [`ApiError`]: a status, a stable [`ErrorCode`] and a
//! sentence, answered as `{"error": "<sentence>", "code": "<code>"}`.
//!
//! The token is compared in constant time ([`token_matches`]). The service
//! writes [`ApiFile`] (URL and token) next to its store, mode 0600, so
//! that the CLI on the same machine (and only users who may read the
//! store) can reach it; the file is removed when the service stops.

use autosync_service::{Command, Control, EventFeed, Published, Status};
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

mod error;
pub use error::{ApiError, ErrorBody, ErrorCode};

/// The file's name, in the store's folder.
pub const API_FILE: &str = "api.json";

/// How the CLI finds the running service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFile {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub token: String,
}

impl ApiFile {
    /// Where the file of a store at `store_path` is.
    pub fn path_for(store_path: &Path) -> PathBuf {
        store_path
            .parent()
            .map(|p| p.join(API_FILE))
            .unwrap_or_else(|| PathBuf::from(API_FILE))
    }

    /// Reads the file, if a service wrote one.
    pub fn read(path: &Path) -> Option<ApiFile> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes the file readable by its owner only: a new file created
    /// 0600 beside it, then renamed over the old one. The token never goes
    /// into an older file (whose mode may be wider, and which another user
    /// may hold open).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        let mut name = std::ffi::OsString::from(".");
        name.push(path.file_name().unwrap_or_default());
        name.push(format!(".{}.tmp", std::process::id()));
        let temp = path.with_file_name(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let written = options
            .open(&temp)
            .and_then(|mut file| {
                use std::io::Write;
                file.write_all(text.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }
}

/// A fresh random token (128 bits, hex).
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The body of `POST /api/v1/queue`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueBody {
    pub ma: String,
    pub profile: String,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub run_immediate: bool,
}

/// The answer of `POST /api/v1/queue`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueAnswer {
    /// The id under which the request waits.
    pub request: u64,
    /// An equal request was already queued.
    pub merged: bool,
}

/// The optional body of a control route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlBody {
    /// Who asks (recorded by the service); `api` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The answer of a control route the service carried out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlAnswer {
    pub ok: bool,
    /// The service's sentence saying what it did.
    pub message: String,
}

/// The path of the control `action` on `ma`, or on every MA / the whole
/// service without one.
/// An MA's name is percent-encoded unless it is made of `A-Za-z0-9_.-`
/// (which every valid name is).
pub fn control_path(action: Control, ma: Option<&str>) -> String {
    match ma {
        Some(ma) => format!("/api/v1/mas/{}/{}", path_segment(ma), action.name()),
        None => format!("/api/v1/{}", action.name()),
    }
}

/// Percent-encodes what may not stand in a path segment as it is.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Reloads the running service's configuration from its file (load,
/// validate, build the engine, then [`Command::Reload`]); the answer says
/// what changed, or why the file was refused (the running configuration
/// then stays).
pub type Reload = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send>>
        + Send
        + Sync,
>;

#[derive(Clone)]
struct AppState {
    commands: mpsc::UnboundedSender<Command>,
    token: String,
    reload: Option<Reload>,
    events: Option<EventFeed>,
}

fn authorise(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme's name is case-insensitive (RFC 9110).
        .and_then(|v| {
            v.get(..7)
                .filter(|s| s.eq_ignore_ascii_case("bearer "))
                .map(|_| &v[7..])
        });
    match given {
        Some(t) if token_matches(&state.token, t) => Ok(()),
        _ => Err(ApiError::unauthorized()),
    }
}

/// Whether `given` is the token, compared in constant time (`subtle`): how
/// long the answer takes says nothing about how much of a guess was right.
/// Only a difference in length answers at once (every token has the same
/// length, 32 hex digits, and that is no secret).
pub fn token_matches(token: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    bool::from(token.as_bytes().ct_eq(given.as_bytes()))
}

/// Sends `command` and waits for its answer.
async fn ask<T>(
    state: &AppState,
    command: impl FnOnce(oneshot::Sender<T>) -> Command,
) -> Result<T, ApiError> {
    let (reply, answer) = oneshot::channel();
    state
        .commands
        .send(command(reply))
        .map_err(|_| ApiError::stopping())?;
    answer.await.map_err(|_| ApiError::stopping())
}

async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Status>, ApiError> {
    authorise(&state, &headers)?;
    let status = ask(&state, |reply| Command::Status { reply }).await?;
    Ok(Json(status))
}

async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<QueueAnswer>, ApiError> {
    authorise(&state, &headers)?;
    let body: QueueBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadBody,
            format!(
                "the body is not `{{\"ma\": \"...\", \"profile\": \"...\"}}` (optional `exclusive`, `run_immediate`): {e}"
            ),
        )
    })?;
    let outcome = ask(&state, |reply| Command::Queue {
        ma: body.ma,
        profile: body.profile,
        exclusive: body.exclusive,
        run_immediate: body.run_immediate,
        by: "api".into(),
        reply,
    })
    .await??;
    Ok(Json(QueueAnswer {
        request: outcome.id().0,
        merged: matches!(outcome, autosync_service::PushOutcome::Merged { .. }),
    }))
}

fn action_names() -> String {
    Control::ALL
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks the action against where it was asked (one MA or none).
fn parse_action(action: &str, ma: Option<&str>) -> Result<Control, ApiError> {
    let Some(control) = Control::from_name(action) else {
        return Err(ApiError::new(
            ErrorCode::UnknownAction,
            format!("no action `{action}` (there are: {})", action_names()),
        ));
    };
    match ma {
        Some(ma) if control.global_only() => Err(ApiError::new(
            ErrorCode::GlobalOnly,
            format!(
                "`{action}` applies to the whole service, not to management agent `{ma}`: POST {}",
                control_path(control, None)
            ),
        )),
        None if control.needs_ma() => Err(ApiError::new(
            ErrorCode::NeedsMa,
            format!("`{action}` needs a management agent: POST /api/v1/mas/{{ma}}/{action}"),
        )),
        _ => Ok(control),
    }
}

/// Decodes the optional body; an empty body is `{}`.
fn control_body(body: &[u8]) -> Result<ControlBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ControlBody::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadBody,
            format!("the body is not `{{\"by\": \"...\"}}`: {e}"),
        )
    })
}

async fn control(
    state: &AppState,
    headers: &HeaderMap,
    action: &str,
    ma: Option<String>,
    body: &[u8],
) -> Result<Json<ControlAnswer>, ApiError> {
    authorise(state, headers)?;
    let action = parse_action(action, ma.as_deref())?;
    let by = control_body(body)?.by.unwrap_or_else(|| "api".into());
    let message = ask(state, |reply| Command::Control {
        action,
        ma,
        by,
        reply,
    })
    .await??;
    Ok(Json(ControlAnswer { ok: true, message }))
}

async fn control_ma(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath((ma, action)): UrlPath<(String, String)>,
    body: Bytes,
) -> Result<Json<ControlAnswer>, ApiError> {
    control(&state, &headers, &action, Some(ma), &body).await
}

async fn control_all(
    State(state): State<AppState>,
    headers: HeaderMap,
    UrlPath(action): UrlPath<String>,
    body: Bytes,
) -> Result<Json<ControlAnswer>, ApiError> {
    control(&state, &headers, &action, None, &body).await
}

async fn reload(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ControlAnswer>, ApiError> {
    authorise(&state, &headers)?;
    let Some(reload) = &state.reload else {
        return Err(ApiError::new(
            ErrorCode::ReloadUnavailable,
            "this service does not reload its configuration over the API",
        ));
    };
    match reload().await {
        Ok(message) => Ok(Json(ControlAnswer { ok: true, message })),
        Err(message) => Err(ApiError::new(ErrorCode::ReloadRefused, message)),
    }
}

/// One published event as Server-Sent Events write it: its type, its
/// number, its JSON.
fn sse_event(published: &Published) -> SseEvent {
    let data = serde_json::to_string(published).unwrap_or_default();
    SseEvent::default()
        .event(published.event.kind())
        .id(published.seq.to_string())
        .data(data)
}

/// What a follower that fell behind is told: how many events it missed.
fn lagged_event(missed: u64) -> SseEvent {
    SseEvent::default()
        .event("lagged")
        .data(serde_json::json!({ "type": "lagged", "missed": missed }).to_string())
}

async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    authorise(&state, &headers)?;
    let Some(feed) = &state.events else {
        return Err(ApiError::new(
            ErrorCode::EventsUnavailable,
            "this service does not publish its events over the API",
        ));
    };
    let receiver = feed.subscribe().ok_or_else(ApiError::stopping)?;
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(published) => sse_event(&published),
            Err(RecvError::Lagged(missed)) => lagged_event(missed),
            // The service stopped: the stream ends after its last event.
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The API's routes over the service's command channel.
pub fn router(commands: mpsc::UnboundedSender<Command>, token: String) -> Router {
    router_with(commands, token, None, None)
}

/// [`router`], and `POST /api/v1/reload` calling `reload`.
pub fn router_with_reload(
    commands: mpsc::UnboundedSender<Command>,
    token: String,
    reload: Reload,
) -> Router {
    router_with(commands, token, Some(reload), None)
}

/// [`router`], with `POST /api/v1/reload` calling `reload` and
/// `GET /api/v1/events` following `events` when they are given.
pub fn router_with(
    commands: mpsc::UnboundedSender<Command>,
    token: String,
    reload: Option<Reload>,
    events: Option<EventFeed>,
) -> Router {
    routes(AppState {
        commands,
        token,
        reload,
        events,
    })
}

fn routes(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events))
        .route("/api/v1/queue", post(queue))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/mas/{ma}/{action}", post(control_ma))
        .route("/api/v1/{action}", post(control_all))
        .with_state(state)
}

/// Binds `addr` (loopback), returning the listener and its real address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves the API until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
