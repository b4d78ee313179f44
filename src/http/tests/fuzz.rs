//! Thousands of random and mutated requests (paths, headers, bodies) from a
//! deterministic xorshift generator: each must get an answer within the
//! timeout, with a JSON body (an error with a code, or success), and the
//! server must still answer afterwards. Then raw garbage on the socket.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

const PATHS: &[&str] = &[
    "/api/v1/status",
    "/api/v1/jobs",
    "/api/v1/backups",
    "/api/v1/backups?job=nightly",
    "/api/v1/jobs/nightly/backup",
    "/api/v1/jobs/oplog/backup",
    "/api/v1/jobs/nightly/pause",
    "/api/v1/jobs/nightly/resume",
    "/api/v1/runs/7",
    "/api/v1/openapi.json",
    "/metrics",
    "/",
];

const PIECES: &[&str] = &[
    "/",
    "//",
    "..",
    "%2e%2e",
    "%00",
    "%ff",
    "%",
    "%zz",
    "?",
    "?job=",
    "&job=a",
    "#",
    "{job}",
    "~",
    "é",
    "%F0%9F%92%A9",
    "-1",
    "18446744073709551616",
    " ",
    ";",
    "=",
    "*",
    "api",
    "v1",
];

const BODIES: &[&str] = &[
    "",
    "{}",
    "{\"manual\":true}",
    "{\"manual\":true,\"note\":\"n\"}",
    "{\"note\":null}",
    "{\"manual\":1}",
    "{\"extra\":1}",
    "null",
    "[]",
    "\"str\"",
    "{\"note\":\"\\ud800\"}",
    "{\"manual\":true,}",
    "{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
];

fn mutated_path(rng: &mut XorShift) -> String {
    let mut path = rng.pick(PATHS).to_string();
    for _ in 0..rng.below(4) {
        let piece = rng.pick(PIECES);
        let at = rng.below(path.len() + 1);
        if path.is_char_boundary(at) {
            path.insert_str(at, piece);
        }
    }
    if rng.chance(10) {
        let cut = rng.below(path.len() + 1);
        if path.is_char_boundary(cut) {
            path.truncate(cut);
        }
    }
    if rng.chance(5) {
        path.push_str(&"a".repeat(rng.below(5000)));
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    path
}

fn mutated_body(rng: &mut XorShift) -> Vec<u8> {
    match rng.below(4) {
        0 => rng.bytes(64),
        1 => vec![b'x'; rng.below(3000)],
        _ => {
            let mut body = rng.pick(BODIES).as_bytes().to_vec();
            if rng.chance(30) && !body.is_empty() {
                let at = rng.below(body.len());
                body[at] = rng.next() as u8;
            }
            body
        }
    }
}

fn random_header(rng: &mut XorShift) -> Option<(HeaderName, HeaderValue)> {
    const NAMES: &[&str] = &[
        "content-type",
        "accept",
        "x-forwarded-for",
        "authorization",
        "cookie",
        "expect",
        "x-random",
        "accept-encoding",
        "range",
        "if-none-match",
    ];
    let name = HeaderName::from_static(NAMES[rng.below(NAMES.len())]);
    let len = rng.below(80);
    let value: Vec<u8> = (0..len).map(|_| 0x20 + (rng.next() % 0x5f) as u8).collect();
    Some((name, HeaderValue::from_bytes(&value).ok()?))
}

#[tokio::test]
async fn random_requests_always_get_a_json_answer() {
    let h = Harness::start_with(|s, _| s.mutations_per_minute = 1_000_000).await;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ];
    let mut sent = 0;
    for i in 0..3000 {
        let method = if rng.chance(50) {
            rng.pick(&methods[..2]).clone()
        } else {
            rng.pick(&methods).clone()
        };
        let path = mutated_path(&mut rng);
        let Ok(url) = reqwest::Url::parse(&format!("{}{path}", h.base)) else {
            continue;
        };
        let mut request = h.client.request(method.clone(), url.clone());
        let auth = rng.below(6);
        request = match auth {
            0 => request,
            1 => request.bearer_auth(CI),
            2 => request.bearer_auth(
                String::from_utf8_lossy(&rng.bytes(30)).replace(['\r', '\n', '\0'], ""),
            ),
            3 => request.header("authorization", "Bearer"),
            _ => request.bearer_auth(OPS),
        };
        for _ in 0..rng.below(4) {
            if let Some((name, value)) = random_header(&mut rng) {
                request = request.header(name, value);
            }
        }
        if rng.chance(60) {
            request = request.body(mutated_body(&mut rng));
        }
        let request = match request.build() {
            Ok(r) => r,
            // The client refuses some of what we generate (e.g. a header
            // value it cannot send): nothing reaches the server.
            Err(_) => continue,
        };
        let call = tokio::time::timeout(Duration::from_secs(10), h.client.execute(request));
        let response = call
            .await
            .unwrap_or_else(|_| panic!("#{i} {method} {url}: no answer within 10 s"))
            .unwrap_or_else(|e| panic!("#{i} {method} {url}: {e}"));
        sent += 1;
        let status = response.status();
        let is_metrics = url.path() == "/metrics" && status.is_success();
        let text = response.text().await.unwrap();
        if method == Method::HEAD || is_metrics {
            continue;
        }
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("#{i} {method} {url}: {status} not JSON ({e}): {text:?}"));
        if !status.is_success() {
            assert!(
                body["error"]["code"]
                    .as_str()
                    .is_some_and(|c| !c.is_empty()),
                "#{i} {method} {url}: {status} {body}"
            );
        }
    }
    assert!(sent > 2500, "only {sent} requests were sent");
    let after = h.get("/api/v1/status", Some(OPS)).send().await.unwrap();
    assert_eq!(after.status(), 200);
    h.stop().await;
}

#[tokio::test]
async fn raw_garbage_on_the_socket_does_not_wedge_the_server() {
    let h = Harness::start().await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    let prefixes: &[&[u8]] = &[
        b"",
        b"GET ",
        b"GET / HTTP/1.1\r\n",
        b"POST /api/v1/jobs/nightly/backup HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ];
    for i in 0..200 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut data = rng.pick(prefixes).to_vec();
        data.extend(rng.bytes(200));
        // Send what there is and close our side: the server must answer
        // or hang up, not wait for more.
        let _ = stream.write_all(&data).await;
        let _ = stream.shutdown().await;
        let mut sink = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut sink));
        assert!(
            read.await.is_ok(),
            "#{i}: the server neither answered nor closed"
        );
    }
    let after = h.get("/api/v1/status", Some(OPS)).send().await.unwrap();
    assert_eq!(after.status(), 200);
    h.stop().await;
}
