//! What the API shows beyond the JSON endpoints: the metrics, the OpenAPI
//! document (against the router's own table), and HTTPS.

use std::collections::BTreeSet;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use reqwest::{header, Method};

use super::*;
use crate::http::routes::{endpoints, OPENAPI_PATH};

fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

fn sample(scrape: &prometheus_parse::Scrape, metric: &str, job: &str) -> f64 {
    let found = scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && s.labels.get("job") == Some(job))
        .unwrap_or_else(|| panic!("no {metric} for {job}"));
    match found.value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => v,
        ref other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn metrics_need_a_token_and_parse() {
    let h = Harness::start().await;
    error(
        h.get("/metrics", None).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let response = h.get("/metrics", Some(OPS)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let s = scrape(&text);
    assert_eq!(sample(&s, "mongo_backupd_backups_stored", "nightly"), 2.0);
    assert_eq!(sample(&s, "mongo_backupd_job_running", "oplog"), 1.0);
    assert_eq!(sample(&s, "mongo_backupd_job_paused", "nightly"), 1.0);
    assert_eq!(sample(&s, "mongo_backupd_oplog_lag_seconds", "oplog"), 42.0);
    assert_eq!(
        sample(&s, "mongo_backupd_last_run_duration_seconds", "nightly"),
        12.5
    );
    assert!(s.samples.iter().any(|x| x.metric == "mongo_backupd_up"));
    h.stop().await;
}

#[tokio::test]
async fn public_metrics_leave_the_api_protected() {
    let h = Harness::start_with(|s, _| s.metrics_public = true).await;
    let response = h.get("/metrics", None).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("mongo_backupd_up 1"));
    // A wrong token on a public endpoint does not turn it into a 401.
    let wrong = h
        .get("/metrics", Some("not-a-token-at-all"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 200);
    error(
        h.get("/api/v1/status", None).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let post = h.post("/metrics", None).send().await.unwrap();
    error(post, 401, "unauthorized").await;
    h.stop().await;
}

#[tokio::test]
async fn openapi_document_names_every_route() {
    let h = Harness::start().await;
    let (status, doc) = json(h.get(OPENAPI_PATH, None).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(crate::http::routes::OPENAPI).unwrap()
    );
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.0"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    assert!(doc["info"]["description"]
        .as_str()
        .unwrap()
        .contains("Restores are not offered"));

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = endpoints()
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_string()))
        .collect();
    assert_eq!(documented, routed);

    // Every `$ref` points at something the document defines.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/").skip(1) {
        let pointer = reference.split('"').next().unwrap();
        assert!(doc.pointer(&format!("/{pointer}")).is_some(), "{pointer}");
    }

    // And the router really serves each of them (the fallback's 404 says
    // "no endpoint").
    for e in endpoints() {
        let path = e.path.replace("{job}", "nightly").replace("{id}", "7");
        let method = Method::from_bytes(e.method.as_str().as_bytes()).unwrap();
        let response = h.with(method, &path, Some(CI)).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{} {path}: {status} {text}", e.method);
    }
    h.stop().await;
}

/// A throw-away CA and a leaf for 127.0.0.1 signed by it, written as
/// `ca.pem`, `cert.pem` (the chain) and `key.pem` into `dir`.
fn pki(dir: &Path) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();

    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf_cert.pem() + &ca_cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
}

#[tokio::test]
async fn https_with_a_private_ca() {
    let h = Harness::start_with(|s, dir| {
        pki(dir);
        s.tls_cert = Some(dir.join("cert.pem"));
        s.tls_key = Some(dir.join("key.pem"));
    })
    .await;
    assert!(h.base.starts_with("https://127.0.0.1:"), "{}", h.base);
    let (status, body) = json(h.get("/api/v1/status", Some(OPS)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], "9.9.9");
    error(
        h.get("/api/v1/status", None).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;

    // Plain HTTP to the TLS port gets no answer, and a client that does
    // not trust the CA fails the handshake; the server keeps serving.
    let plain = h.base.replace("https://", "http://");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(client
        .get(format!("{plain}/api/v1/status"))
        .send()
        .await
        .is_err());
    let untrusting = client.get(format!("{}/api/v1/status", h.base)).send().await;
    assert!(untrusting.is_err());
    let again = h.get("/api/v1/status", Some(CI)).send().await.unwrap();
    assert_eq!(again.status(), 200);
    h.stop().await;
}
