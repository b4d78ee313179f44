//! Requests the API must refuse or limit: bad bodies, too large bodies,
//! too many mutations, unknown routes and methods, rotated tokens.

use super::*;

#[tokio::test]
async fn bad_bodies_are_refused_before_the_daemon_sees_them() {
    let h = Harness::start().await;
    let path = "/api/v1/jobs/nightly/backup";
    for body in [
        "{\"manual\": tru",
        "{\"manual\": true, \"force\": true}",
        "{\"manual\": \"yes\"}",
        "[1, 2]",
        "\u{0}",
    ] {
        let response = h.post(path, Some(OPS)).body(body).send().await.unwrap();
        let answer = error(response, 400, "invalid_json").await;
        if body.contains("force") {
            assert!(answer.to_string().contains("unknown field"), "{answer}");
        }
    }
    let large = h
        .post(path, Some(CI))
        .body(vec![b' '; 1025])
        .send()
        .await
        .unwrap();
    error(large, 413, "payload_too_large").await;
    assert!(h.seen().is_empty());
    h.stop().await;
}

/// A chunked body has no Content-Length: the limit applies while reading.
#[tokio::test]
async fn chunked_bodies_over_the_limit_get_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::start().await;
    let addr = h.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let chunk = "x".repeat(800);
    let request = format!(
        "POST /api/v1/jobs/nightly/backup HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {OPS}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\""), "{answer}");
    h.stop().await;
}

#[tokio::test]
async fn mutations_are_rate_limited_per_token() {
    let h = Harness::start().await;
    for i in 0..5 {
        let r = h
            .post("/api/v1/jobs/nightly/pause", Some(OPS))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "request {i}");
    }
    let sixth = h
        .post("/api/v1/jobs/nightly/backup", Some(OPS))
        .send()
        .await
        .unwrap();
    let retry: u64 = sixth.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    error(sixth, 429, "rate_limited").await;
    assert_eq!(h.seen().len(), 5, "the refused request reached the daemon");

    // Reading is not limited, and the other token has its own budget.
    let read = h.get("/api/v1/status", Some(OPS)).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let other = h
        .post("/api/v1/jobs/nightly/resume", Some(CI))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    h.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let h = Harness::start().await;
    error(
        h.get("/api/v1/nothing", Some(OPS)).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    error(
        h.get("/", Some(OPS)).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    let delete = h.with(reqwest::Method::DELETE, "/api/v1/status", Some(OPS));
    error(delete.send().await.unwrap(), 405, "method_not_allowed").await;
    let get_backup = h.get("/api/v1/jobs/nightly/backup", Some(OPS));
    error(get_backup.send().await.unwrap(), 405, "method_not_allowed").await;
    // Restores are deliberately not offered.
    let restore = h.post("/api/v1/jobs/nightly/restore", Some(OPS));
    error(restore.send().await.unwrap(), 404, "not_found").await;
    h.stop().await;
}

#[tokio::test]
async fn token_file_changes_apply_without_restart() {
    let h = Harness::start().await;
    let new = "rotated-0123456789abcdef";
    std::fs::write(h.dir.path().join("tokens"), format!("ops {new}\n")).unwrap();
    let old = h.get("/api/v1/status", Some(OPS)).send().await.unwrap();
    error(old, 401, "unauthorized").await;
    assert_eq!(
        h.get("/api/v1/status", Some(new))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    h.stop().await;
}
