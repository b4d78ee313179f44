//! What the API writes to the log: the audit line of every mutating call,
//! the start and clear-text warnings, and never a token.

use std::io;

use super::*;

/// Collects the formatted log output of the test's thread (the tests run
/// on a current-thread runtime, so the server's tasks log here too).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    fn install(&self) -> tracing::subscriber::DefaultGuard {
        // tracing caches each callsite's interest process-wide. With a
        // single registered dispatcher, a sibling test thread without a
        // subscriber that first reaches a callsite caches "never" and our
        // capture misses the event. A second, permanent dispatcher makes
        // tracing combine all of them ("sometimes": asked per event).
        static ANCHOR: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        ANCHOR.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

#[tokio::test]
async fn mutations_are_audited_and_tokens_never_logged() {
    let logs = Capture::default();
    let _guard = logs.install();
    let h = Harness::start().await;
    let wrong = "wrong-0123456789abcdef";
    let busy = h
        .post("/api/v1/jobs/oplog/backup", Some(OPS))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 409);
    let paused = h
        .post("/api/v1/jobs/nightly/pause", Some(CI))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200);
    let read = h.get("/api/v1/status", Some(OPS)).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let refused = h
        .post("/api/v1/jobs/nightly/pause", Some(wrong))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    h.stop().await;

    let text = logs.text();
    assert!(
        text.contains("HTTP API listening on http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("Read 2 HTTP API token(s)"), "{text}");
    let audit = |token: &str, what: &str| {
        text.lines()
            .any(|l| l.contains(" INFO ") && l.contains(token) && l.contains(what))
    };
    assert!(
        audit(
            "Token \"ops\" from 127.0.0.1:",
            "called POST /api/v1/jobs/oplog/backup: job_running (409)."
        ),
        "{text}"
    );
    assert!(
        audit(
            "Token \"ci\" from 127.0.0.1:",
            "called POST /api/v1/jobs/nightly/pause: ok (200)."
        ),
        "{text}"
    );
    assert!(
        !text.contains("called GET"),
        "reads are not audited: {text}"
    );
    assert!(
        text.contains("Refused an HTTP request from 127.0.0.1:")
            && text.contains("the bearer token is not one of the configured tokens"),
        "{text}"
    );
    for secret in [OPS, CI, wrong] {
        assert!(!text.contains(secret), "a token was logged: {text}");
    }
}

#[tokio::test]
async fn clear_text_on_a_network_address_is_warned_about() {
    let logs = Capture::default();
    let _guard = logs.install();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path());
    s.listen = "0.0.0.0:0".parse().unwrap();
    let (handle, _requests) = api::channel();
    let server = Server::bind(handle, s).await.unwrap();
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    // Cancelled already: logs its start, stops at once.
    tokio::time::timeout(Duration::from_secs(10), server.run(shutdown))
        .await
        .unwrap();
    let text = logs.text();
    assert!(
        text.contains("HTTP API listening on http://0.0.0.0:"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" WARN ") && l.contains("clear text")),
        "{text}"
    );
}
