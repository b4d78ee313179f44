//! The HTTP API end to end: a real server on 127.0.0.1:0 in front of a
//! stand-in scheduler loop that answers canned replies, driven by reqwest.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod fuzz;
mod logs;
mod refusals;
mod surface;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{header, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::fixtures;
use super::{HttpError, Server};
use crate::config::HttpSettings;
use crate::daemon::api::{
    self, ApiError, Caller, ErrorCode, JobStatus, Reply, Request, Requests, RunInfo, Status,
};

pub const OPS: &str = "ops-0123456789abcdef";
pub const CI: &str = "ci-0123456789abcdef0";

/// What the stand-in loop was asked, with the caller.
type Seen = Arc<Mutex<Vec<(String, Caller)>>>;

pub fn settings(dir: &Path) -> HttpSettings {
    std::fs::write(
        dir.join("tokens"),
        format!("# test tokens\nops {OPS}\nci {CI}\n"),
    )
    .unwrap();
    HttpSettings {
        listen: "127.0.0.1:0".parse().unwrap(),
        token_file: dir.join("tokens"),
        tls_cert: None,
        tls_key: None,
        metrics_public: false,
        mutations_per_minute: 5,
        max_body_bytes: 1024,
    }
}

/// Answers like the scheduler would: `nightly` can be backed up (run 7),
/// `oplog` is running, other jobs do not exist.
fn stand_in(mut requests: Requests, seen: Seen) {
    tokio::spawn(async move {
        while let Some((request, reply)) = requests.next().await {
            let unknown = |job: &str| {
                Reply::Error(ApiError::new(
                    ErrorCode::UnknownJob,
                    format!("no job {job:?}"),
                ))
            };
            let answer = match request {
                Request::Status => Reply::Status(Box::new(fixtures::status())),
                Request::BackupNow {
                    job,
                    options,
                    caller,
                } => {
                    seen.lock().unwrap().push((format!("backup {job}"), caller));
                    match job.as_str() {
                        "nightly" => Reply::Run(RunInfo {
                            note: options.note,
                            kind: if options.manual { "manual" } else { "full" }.to_string(),
                            ..fixtures::run(7, &job)
                        }),
                        "oplog" => Reply::Error(ApiError::new(
                            ErrorCode::JobRunning,
                            "oplog is running already",
                        )),
                        _ => unknown(&job),
                    }
                }
                Request::Run { id: 7 } => Reply::Run(fixtures::run(7, "nightly")),
                Request::Run { id } => {
                    Reply::Error(ApiError::new(ErrorCode::NotFound, format!("no run {id}")))
                }
                Request::Pause { job, caller } | Request::Resume { job, caller } => {
                    seen.lock()
                        .unwrap()
                        .push((format!("pause/resume {job}"), caller));
                    match fixtures::status().jobs.into_iter().find(|j| j.name == job) {
                        Some(j) => Reply::Job(Box::new(j)),
                        None => unknown(&job),
                    }
                }
                Request::Backups { job } => Reply::Backups(
                    fixtures::backups()
                        .into_iter()
                        .filter(|b| job.as_ref().is_none_or(|j| *j == b.job))
                        .collect(),
                ),
                other => Reply::Error(ApiError::new(
                    ErrorCode::Internal,
                    format!("the stand-in does not serve {other:?}"),
                )),
            };
            let _ = reply.send(answer);
        }
    });
}

pub struct Harness {
    pub base: String,
    pub client: reqwest::Client,
    seen: Seen,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    pub dir: TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(|_, _| {}).await
    }

    /// `tweak` may change the settings and write files into the folder.
    pub async fn start_with(tweak: impl FnOnce(&mut HttpSettings, &Path)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = settings(dir.path());
        tweak(&mut settings, dir.path());
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(10));
        let ca = dir.path().join("ca.pem");
        if ca.exists() {
            let pem = std::fs::read(&ca).unwrap();
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        let (handle, requests) = api::channel();
        let seen = Seen::default();
        stand_in(requests, Arc::clone(&seen));
        let server = Server::bind(handle, settings).await.unwrap();
        let base = format!("{}://{}", server.scheme(), server.local_addr());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(server.run(shutdown.clone()));
        Harness {
            base,
            client: client.build().unwrap(),
            seen,
            shutdown,
            server,
            dir,
        }
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        self.with(reqwest::Method::GET, path, token)
    }

    pub fn post(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        self.with(reqwest::Method::POST, path, token)
    }

    pub fn with(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    fn seen(&self) -> Vec<(String, Caller)> {
        self.seen.lock().unwrap().clone()
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("the server stops within 10 s")
            .unwrap();
    }
}

/// The status and the JSON body (which every answer of the API has).
pub async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text:?}"));
    (status, value)
}

/// Asserts an error answer with `code`.
pub async fn error(response: reqwest::Response, status: u16, code: &str) -> Value {
    let (got, body) = json(response).await;
    assert_eq!(got.as_u16(), status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    body
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let h = Harness::start().await;
    let response = h.get("/api/v1/status", None).send().await.unwrap();
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    error(response, 401, "unauthorized").await;
    let wrong = h.get("/api/v1/status", Some("ops-0123456789abcdeX"));
    error(wrong.send().await.unwrap(), 401, "unauthorized").await;
    let basic = h.get("/api/v1/status", None).basic_auth("ops", Some(OPS));
    error(basic.send().await.unwrap(), 401, "unauthorized").await;
    let post = h
        .post("/api/v1/jobs/nightly/backup", None)
        .send()
        .await
        .unwrap();
    error(post, 401, "unauthorized").await;
    assert!(
        h.seen().is_empty(),
        "an unauthenticated request reached the daemon"
    );

    let (status, body) = json(h.get("/api/v1/status", Some(OPS)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let parsed: Status = serde_json::from_value(body).unwrap();
    assert_eq!(parsed, fixtures::status());
    h.stop().await;
}

#[tokio::test]
async fn jobs_backups_and_runs() {
    let h = Harness::start().await;
    let (status, body) = json(h.get("/api/v1/jobs", Some(CI)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let jobs: Vec<JobStatus> = serde_json::from_value(body).unwrap();
    assert_eq!(jobs, fixtures::status().jobs);

    let all = json(h.get("/api/v1/backups", Some(OPS)).send().await.unwrap()).await;
    assert_eq!(all.1.as_array().unwrap().len(), 3);
    let one = h
        .get("/api/v1/backups?job=other", Some(OPS))
        .send()
        .await
        .unwrap();
    assert_eq!(json(one).await.1, serde_json::json!([]));
    let bad = h
        .get("/api/v1/backups?jbo=x", Some(OPS))
        .send()
        .await
        .unwrap();
    error(bad, 400, "invalid_request").await;

    let (status, run) = json(h.get("/api/v1/runs/7", Some(OPS)).send().await.unwrap()).await;
    assert_eq!((status.as_u16(), run["id"].as_u64()), (200, Some(7)));
    error(
        h.get("/api/v1/runs/8", Some(OPS)).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    error(
        h.get("/api/v1/runs/x", Some(OPS)).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    h.stop().await;
}

#[tokio::test]
async fn backup_now_starts_a_run_as_the_token() {
    let h = Harness::start().await;
    let response = h
        .post("/api/v1/jobs/nightly/backup", Some(OPS))
        .json(&serde_json::json!({"manual": true, "note": "before the migration"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::LOCATION], "/api/v1/runs/7");
    let (status, body) = json(response).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["run_id"], 7);
    assert_eq!(body["run"]["kind"], "manual");
    assert_eq!(body["run"]["note"], "before the migration");
    let caller = Caller {
        name: "token \"ops\"".to_string(),
        via: "http".to_string(),
    };
    assert_eq!(h.seen(), vec![("backup nightly".to_string(), caller)]);

    // No body at all is fine too.
    let plain = h
        .post("/api/v1/jobs/nightly/backup", Some(CI))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 202);
    assert_eq!(h.seen()[1].1.name, "token \"ci\"");

    let busy = h
        .post("/api/v1/jobs/oplog/backup", Some(OPS))
        .send()
        .await
        .unwrap();
    error(busy, 409, "job_running").await;
    let unknown = h
        .post("/api/v1/jobs/nope/backup", Some(OPS))
        .send()
        .await
        .unwrap();
    error(unknown, 404, "unknown_job").await;

    let (status, job) = json(
        h.post("/api/v1/jobs/nightly/pause", Some(CI))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &job["name"]),
        (200, &Value::from("nightly"))
    );
    let resumed = h
        .post("/api/v1/jobs/oplog/resume", Some(CI))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let unknown = h
        .post("/api/v1/jobs/nope/pause", Some(CI))
        .send()
        .await
        .unwrap();
    error(unknown, 404, "unknown_job").await;
    h.stop().await;
}

#[tokio::test]
async fn start_errors_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = settings(dir.path());
    s.listen = taken.local_addr().unwrap();
    let (handle, _requests) = api::channel();
    let e = Server::bind(handle.clone(), s.clone()).await.err().unwrap();
    assert!(matches!(e, HttpError::Bind { .. }), "{e}");
    assert!(
        e.to_string().contains("another process listens there"),
        "{e}"
    );

    std::fs::write(&s.token_file, "# none yet\n").unwrap();
    let e = Server::bind(handle.clone(), s.clone()).await.err().unwrap();
    assert!(matches!(e, HttpError::TokenFileEmpty { .. }), "{e}");

    s.token_file = dir.path().join("missing");
    let e = Server::bind(handle.clone(), s.clone()).await.err().unwrap();
    assert!(
        e.to_string().contains("cannot read the HTTP token file"),
        "{e}"
    );

    let mut s = settings(dir.path());
    s.tls_cert = Some(dir.path().join("cert.pem"));
    let e = Server::bind(handle.clone(), s).await.err().unwrap();
    assert!(matches!(e, HttpError::TlsIncomplete), "{e}");

    // A listener bound by the caller is used as it is.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::with_listener(handle, settings(dir.path()), listener).unwrap();
    assert_eq!(server.local_addr(), addr);
    assert_eq!(server.scheme(), "http");
}
