//! The endpoints, and the gate every request passes first: bearer token,
//! per-token limit on mutations, body size, and the audit log line of
//! each mutating call.
//!
//! The routes are one table ([`endpoints`]) so the OpenAPI test can check
//! that the document names exactly the routes the router serves.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::{self, TokenStore};
use super::errors::{Failure, ResultCode};
use super::rate::{self, RateLimiter};
use super::{metrics, Peer};
use crate::config::HttpSettings;
use crate::daemon::api::{BackupNow, Caller, DaemonHandle};

/// Served without a token.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";
/// Served without a token when `[http] metrics_public` is set.
pub const METRICS_PATH: &str = "/metrics";
/// The hand-written description of every endpoint.
pub const OPENAPI: &str = include_str!("openapi.json");
/// A client gets this long to send a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    handle: DaemonHandle,
    tokens: TokenStore,
    limiter: Mutex<RateLimiter>,
    per_minute: u32,
    metrics_public: bool,
    max_body_bytes: usize,
}

impl AppState {
    pub fn new(handle: DaemonHandle, settings: &HttpSettings, tokens: TokenStore) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                handle,
                tokens,
                limiter: Mutex::new(RateLimiter::per_minute(settings.mutations_per_minute)),
                per_minute: settings.mutations_per_minute,
                metrics_public: settings.metrics_public,
                max_body_bytes: settings.max_body_bytes,
            }),
        }
    }
}

/// The token a request came with (`None` on public endpoints without one).
#[derive(Debug, Clone)]
struct Client(Option<String>);

impl Client {
    fn caller(&self) -> Caller {
        let name = self.0.as_deref().unwrap_or("anonymous");
        Caller {
            name: format!("token {name:?}"),
            via: "http".to_string(),
        }
    }
}

/// One route of the table.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn at(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Endpoint {
    Endpoint {
        method,
        path,
        handler,
    }
}

/// Every route the router serves.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        at(Method::GET, "/api/v1/status", get(status)),
        at(Method::GET, "/api/v1/jobs", get(jobs)),
        at(Method::GET, "/api/v1/backups", get(backups)),
        at(Method::POST, "/api/v1/jobs/{job}/backup", post(backup_now)),
        at(Method::GET, "/api/v1/runs/{id}", get(run)),
        at(Method::POST, "/api/v1/jobs/{job}/pause", post(pause)),
        at(Method::POST, "/api/v1/jobs/{job}/resume", post(resume)),
        at(Method::GET, OPENAPI_PATH, get(openapi)),
        at(Method::GET, METRICS_PATH, get(metrics_text)),
    ]
}

pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for endpoint in endpoints() {
        router = router.route(endpoint.path, endpoint.handler);
    }
    router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The limiter stays consistent even if a holder panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Authentication, rate limit, body size and audit, before any handler.
async fn gate(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let app = &app.inner;
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let peer = request
        .extensions()
        .get::<Peer>()
        .map_or_else(|| "an unknown address".to_string(), |p| p.0.to_string());
    let reading = method == Method::GET || method == Method::HEAD;
    let public = reading && (path == OPENAPI_PATH || (path == METRICS_PATH && app.metrics_public));

    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer);
    let name = presented.and_then(|t| app.tokens.current().lookup(t).map(str::to_string));
    if name.is_none() && !public {
        let why = if presented.is_some() {
            "the bearer token is not one of the configured tokens"
        } else {
            "no `Authorization: Bearer TOKEN` header"
        };
        tracing::warn!("Refused an HTTP request from {peer} for {method} {path}: {why}.");
        return Failure::unauthorized(format!(
            "{why}; send `Authorization: Bearer TOKEN` with a token from the daemon's [http] token_file"
        ))
        .into_response();
    }

    let audited = name.as_deref().filter(|_| !reading);
    if let Some(name) = audited {
        let verdict = lock(&app.limiter).check(name, Instant::now());
        if let Err(wait) = verdict {
            let failure = Failure::rate_limited(rate::retry_after_secs(wait), app.per_minute);
            tracing::info!(
                token = %name,
                "Token {name:?} from {peer} called {method} {path}: rate_limited (429)."
            );
            return failure.into_response();
        }
    }

    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = declared
        .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > app.max_body_bytes));
    let response = if too_large {
        Failure::payload_too_large(app.max_body_bytes).into_response()
    } else {
        request.extensions_mut().insert(Client(name.clone()));
        next.run(request).await
    };

    if let Some(name) = audited {
        let status = response.status();
        let code = response
            .extensions()
            .get::<ResultCode>()
            .map_or(if status.is_success() { "ok" } else { "error" }, |c| c.0);
        tracing::info!(
            token = %name,
            "Token {name:?} from {peer} called {method} {path}: {code} ({}).",
            status.as_u16()
        );
    }
    response
}

fn bad_query(e: &QueryRejection) -> Failure {
    Failure::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!("bad query string: {}", e.body_text()),
    )
}

fn bad_path(e: &PathRejection) -> Failure {
    Failure::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!("bad path: {}", e.body_text()),
    )
}

/// The body, at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Failure> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let inner = e.into_inner();
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(inner.as_ref());
            while let Some(c) = cause {
                if c.is::<http_body_util::LengthLimitError>() {
                    return Err(Failure::payload_too_large(limit));
                }
                cause = c.source();
            }
            Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("could not read the request body: {inner}"),
            ))
        }
        Err(_) => Err(Failure::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

async fn status(State(app): State<AppState>) -> Result<Response, Failure> {
    Ok(Json(app.inner.handle.status().await?).into_response())
}

async fn jobs(State(app): State<AppState>) -> Result<Response, Failure> {
    Ok(Json(app.inner.handle.status().await?.jobs).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupsQuery {
    job: Option<String>,
}

async fn backups(
    State(app): State<AppState>,
    query: Result<Query<BackupsQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(query) = query.map_err(|e| bad_query(&e))?;
    let list = app.inner.handle.backups(query.job.as_deref()).await?;
    Ok(Json(list).into_response())
}

/// The body of `POST /jobs/{job}/backup`; all of it optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupRequest {
    #[serde(default)]
    manual: bool,
    #[serde(default)]
    note: Option<String>,
}

async fn backup_now(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    job: Result<Path<String>, PathRejection>,
    body: Body,
) -> Result<Response, Failure> {
    let Path(job) = job.map_err(|e| bad_path(&e))?;
    let bytes = read_body(body, app.inner.max_body_bytes).await?;
    let request = if bytes.iter().all(u8::is_ascii_whitespace) {
        BackupRequest::default()
    } else {
        serde_json::from_slice::<BackupRequest>(&bytes).map_err(|e| {
            Failure::invalid_json(format!(
                "the body must be a JSON object like {{\"manual\":true,\"note\":\"...\"}}: {e}"
            ))
        })?
    };
    let options = BackupNow {
        manual: request.manual,
        note: request.note,
    };
    let run = app
        .inner
        .handle
        .backup_now(&job, options, client.caller())
        .await?;
    let location = format!("/api/v1/runs/{}", run.id);
    let body = json!({ "run_id": run.id, "run": run });
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

async fn run(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let Path(id) = id.map_err(|e| bad_path(&e))?;
    let Ok(number) = id.parse::<u64>() else {
        return Err(Failure::not_found(format!(
            "no run has the id {id:?}; run ids are numbers"
        )));
    };
    Ok(Json(app.inner.handle.run(number).await?).into_response())
}

async fn pause(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    job: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let Path(job) = job.map_err(|e| bad_path(&e))?;
    let status = app.inner.handle.pause(&job, client.caller()).await?;
    Ok(Json(status).into_response())
}

async fn resume(
    State(app): State<AppState>,
    Extension(client): Extension<Client>,
    job: Result<Path<String>, PathRejection>,
) -> Result<Response, Failure> {
    let Path(job) = job.map_err(|e| bad_path(&e))?;
    let status = app.inner.handle.resume(&job, client.caller()).await?;
    Ok(Json(status).into_response())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn metrics_text(State(app): State<AppState>) -> Result<Response, Failure> {
    let handle = &app.inner.handle;
    let status = handle.status().await?;
    let backups = handle.backups(None).await?;
    let text = metrics::render(&status, &backups);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

async fn unknown_route(method: Method, uri: Uri) -> Failure {
    Failure::not_found(format!(
        "no endpoint {method} {}; the API is described at {OPENAPI_PATH}",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Failure {
    Failure::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not answer {method}; the API is described at {OPENAPI_PATH}",
            uri.path()
        ),
    )
}
