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
//!   (optional `exclusive`, `run_immediate`, `by`): queue a run;
//! - `POST /api/v1/mas/{ma}/{action}` and `POST /api/v1/{action}` (every MA,
//!   or the whole service), optional body `{"by": "..."}`: an operator's
//!   [`Control`] (`start`, `stop`, `cancel`, `clear-queue`, `pause`,
//!   `resume`, `approve`, `reject`, `maintenance`, `end-maintenance`),
//!   answered with [`ControlAnswer`];
//! - `POST /api/v1/reload` (with a reloader): reload the configuration
//!   file, answered with [`ControlAnswer`] or `reload-refused` with why.
//!
//! The service serves it ([`router_with_stop`]) through its graceful stop,
//! until it has stopped: the status and the events answer as usual, and
//! what would start work answers `service-stopping` (503): a reload once
//! the stop began, the queue and the controls that start work as the
//! service refuses them.
//!
//! Every request is authenticated first, whatever its path, method or
//! body: without the token it answers `unauthorized` and nothing else is
//! looked at. Every error is an [`ApiError`]: a status, a stable
//! [`ErrorCode`] and a sentence, answered as
//! `{"error": "<sentence>", "code": "<code>"}`, the router's own too (an
//! unknown path `not-found`, a method the route does not take
//! `method-not-allowed` with its `allow` header, a body over
//! [`BODY_LIMIT`] `body-too-large`). A body with a field its route does not
//! take is refused (`bad-body`, naming the field).
//!
//! The token is compared in constant time ([`token_matches`]). The service
//! writes [`ApiFile`] (URL and token) next to its store, mode 0600, so
//! that the CLI on the same machine (and only users who may read the
//! store) can reach it; the file is removed when the service stops.

use autosync_service::{CancellationToken, Command, Control, EventFeed, Published, Status};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};

mod error;
mod file;
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use file::{API_FILE, ApiFile};

/// A fresh random token (128 bits, hex).
pub fn new_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The largest request body the API takes, in bytes (2 MiB); a larger one
/// answers `body-too-large`.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The body of `POST /api/v1/queue`. A field it does not have is refused
/// (a misspelt `run_immediate` is not silently dropped).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    pub ma: String,
    pub profile: String,
    #[serde(default)]
    pub exclusive: bool,
    #[serde(default)]
    pub run_immediate: bool,
    /// Who asks (the run's reason: `manual (by)`); `api` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
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
    /// Cancelled when the service's graceful stop begins.
    stopping: Option<CancellationToken>,
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

/// Authenticates every request before anything else is looked at (its
/// path, its method, its body): without the token, `unauthorized`.
async fn authenticate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Err(refused) = authorise(&state, request.headers()) {
        return refused.into_response();
    }
    let mut response = next.run(request).await;
    // An unknown action asked with another method than POST is no route
    // (`not-found`), but the router adds the `allow` header of the
    // `{action}` route it matched: a path that is not there allows nothing.
    if response.status() == axum::http::StatusCode::NOT_FOUND {
        response.headers_mut().remove(axum::http::header::ALLOW);
    }
    response
}

/// The request's body, or the error that says why it could not be read
/// (`body-too-large` over [`BODY_LIMIT`]).
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::BodyTooLarge,
                format!(
                    "the request body is larger than the API takes ({BODY_LIMIT} bytes at most)"
                ),
            )
        } else {
            ApiError::new(
                ErrorCode::BadBody,
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            )
        }
    })
}

/// The path's parameters, or `not-found` when they do not decode (a
/// segment that is not UTF-8 names no MA and no action).
fn path_params<T>(params: Result<UrlPath<T>, PathRejection>, uri: &Uri) -> Result<T, ApiError> {
    params.map(|UrlPath(p)| p).map_err(|rejection| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("no route `{}`: {}", uri.path(), rejection.body_text()),
        )
    })
}

/// The API's routes, as the errors list them.
const ROUTES: &str = "GET /api/v1/status, GET /api/v1/events, POST /api/v1/queue, \
POST /api/v1/reload, POST /api/v1/{action}, POST /api/v1/mas/{ma}/{action}";

/// A path no route has.
async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!(
            "no route `{method} {}` (the API's routes: {ROUTES})",
            uri.path()
        ),
    )
}

/// A route asked with a method it does not take (the router adds the
/// `allow` header). A path that only matched an `{action}` route with an
/// action that does not exist is no route: `not-found`.
async fn method_not_allowed(
    method: Method,
    uri: Uri,
    params: Result<UrlPath<std::collections::HashMap<String, String>>, PathRejection>,
) -> ApiError {
    let known = match params {
        Ok(UrlPath(params)) => params
            .get("action")
            .is_none_or(|a| Control::from_name(a).is_some()),
        // A route without parameters (`/api/v1/status`, ...) is known.
        Err(PathRejection::MissingPathParams(_)) => true,
        Err(_) => false,
    };
    if !known {
        return not_found(method, uri).await;
    }
    let takes = match uri.path() {
        "/api/v1/status" | "/api/v1/events" => "GET",
        _ => "POST",
    };
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("`{}` takes {takes}, not {method}", uri.path()),
    )
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

async fn status(State(state): State<AppState>) -> Result<Json<Status>, ApiError> {
    let status = ask(&state, |reply| Command::Status { reply }).await?;
    Ok(Json(status))
}

async fn queue(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<QueueAnswer>, ApiError> {
    let body = read_body(body)?;
    let body: QueueBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadBody,
            format!(
                "the body is not `{{\"ma\": \"...\", \"profile\": \"...\"}}` (optional `exclusive`, `run_immediate`, `by`): {e}"
            ),
        )
    })?;
    let outcome = ask(&state, |reply| Command::Queue {
        ma: body.ma,
        profile: body.profile,
        exclusive: body.exclusive,
        run_immediate: body.run_immediate,
        by: body.by.unwrap_or_else(|| "api".into()),
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
    action: &str,
    ma: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ControlAnswer>, ApiError> {
    let action = parse_action(action, ma.as_deref())?;
    let by = control_body(&read_body(body)?)?
        .by
        .unwrap_or_else(|| "api".into());
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
    uri: Uri,
    params: Result<UrlPath<(String, String)>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ControlAnswer>, ApiError> {
    let (ma, action) = path_params(params, &uri)?;
    control(&state, &action, Some(ma), body).await
}

async fn control_all(
    State(state): State<AppState>,
    uri: Uri,
    params: Result<UrlPath<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ControlAnswer>, ApiError> {
    let action = path_params(params, &uri)?;
    control(&state, &action, None, body).await
}

/// Checks the body of `POST /api/v1/reload`: empty, or a JSON object
/// without fields (the route takes none).
fn reload_body(body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let refused = |why: String| {
        ApiError::new(
            ErrorCode::BadBody,
            format!("the body of `POST /api/v1/reload` is empty or `{{}}`: {why}"),
        )
    };
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| refused(e.to_string()))?;
    match object.keys().next() {
        None => Ok(()),
        Some(field) => Err(refused(format!("unknown field `{field}`, there are none"))),
    }
}

async fn reload(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ControlAnswer>, ApiError> {
    reload_body(&read_body(body)?)?;
    let Some(reload) = &state.reload else {
        return Err(ApiError::new(
            ErrorCode::ReloadUnavailable,
            "this service does not reload its configuration over the API",
        ));
    };
    // No new engine is built for a service that is stopping.
    if state
        .stopping
        .as_ref()
        .is_some_and(CancellationToken::is_cancelled)
    {
        return Err(ApiError::new(
            ErrorCode::ServiceStopping,
            "the service is stopping (a graceful stop): nothing new starts; reload once it has started again",
        ));
    }
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
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
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
        stopping: None,
    })
}

/// [`router_with`] for a service whose graceful stop begins when
/// `stopping` is cancelled: from then on, until the API closes, a reload
/// answers `service-stopping` (the service refuses the queue and the
/// controls that would start work itself; the status and the events
/// answer as usual).
pub fn router_with_stop(
    commands: mpsc::UnboundedSender<Command>,
    token: String,
    reload: Option<Reload>,
    events: Option<EventFeed>,
    stopping: CancellationToken,
) -> Router {
    routes(AppState {
        commands,
        token,
        reload,
        events,
        stopping: Some(stopping),
    })
}

fn routes(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events))
        .route("/api/v1/queue", post(queue))
        .route("/api/v1/reload", post(reload))
        .route("/api/v1/mas/{ma}/{action}", post(control_ma))
        .route("/api/v1/{action}", post(control_all))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state.clone());
    // Authentication wraps the whole router, so that it comes before
    // routing: a request without the token learns nothing of the routes
    // (no 404, no 405 and its `allow` header, no 413).
    Router::new()
        .fallback_service(api)
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn post_reload(addr: SocketAddr) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = "POST /api/v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    /// Once the service's graceful stop began, a reload answers
    /// `service-stopping` (503) without building anything; before, it
    /// reloads.
    #[tokio::test]
    async fn a_reload_during_the_graceful_stop_should_answer_service_stopping() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let reload: Reload = Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok("configuration reloaded".to_owned()) })
        });
        let stopping = CancellationToken::new();
        let router = router_with_stop(tx, "secret".into(), Some(reload), None, stopping.clone());
        let (listener, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        tokio::spawn(serve(listener, router, std::future::pending()));
        let answer = post_reload(addr).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        stopping.cancel();
        let answer = post_reload(addr).await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        let (_, body) = answer.split_once("\r\n\r\n").unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "service-stopping");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("the service is stopping"),
            "{body}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "nothing was reloaded");
    }
}
