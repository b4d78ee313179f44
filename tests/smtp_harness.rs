#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

//! Proves the SMTP test harness (`tests/common/smtp.rs` +
//! `tests/smtp/smtp_server.py`) against lettre, the client the daemon uses.

#[path = "common/smtp.rs"]
mod smtp;

use std::error::Error as _;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use smtp::{SmtpMode, SmtpOptions, SmtpServer, TestPki};

const WAIT: Duration = Duration::from_secs(10);
const USER: &str = "alerts@example.com";
const PASSWORD: &str = "correct horse battery staple";

type Transport = AsyncSmtpTransport<Tokio1Executor>;

fn transport(port: u16, tls: Tls, creds: Option<(&str, &str)>) -> Transport {
    let mut b = Transport::builder_dangerous("localhost")
        .port(port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(10)));
    if let Some((u, p)) = creds {
        b = b.credentials(Credentials::new(u.to_string(), p.to_string()));
    }
    b.build()
}

fn params(pki: &TestPki) -> TlsParameters {
    pki.tls_parameters("localhost")
}

fn message(subject: &str, body: &str) -> Message {
    Message::builder()
        .from(
            "mongo-backupd <backupd@example.com>"
                .parse::<Mailbox>()
                .unwrap(),
        )
        .to("Ops Team <ops@example.com>".parse::<Mailbox>().unwrap())
        .to("dba@example.com".parse::<Mailbox>().unwrap())
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_string())
        .unwrap()
}

/// The whole error chain, for assertions on causes lettre does not classify.
fn chain(err: &lettre::transport::smtp::Error) -> String {
    let mut s = format!("{err} / {err:?}");
    let mut source = err.source();
    while let Some(e) = source {
        s.push_str(&format!(" <- {e} / {e:?}"));
        source = e.source();
    }
    s
}

#[tokio::test]
async fn plain_smtp_delivers_and_is_parsed() {
    let server = SmtpServer::start(SmtpOptions::plain());
    let t = transport(server.port(), Tls::None, None);
    let resp = t
        .send(message("backup ok", "line one\nline two\n"))
        .await
        .unwrap();
    assert!(resp.is_positive());

    let msgs = server.wait_for(1, WAIT);
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.seq, 1);
    assert_eq!(m.subject, "backup ok");
    assert_eq!(m.from, "mongo-backupd <backupd@example.com>");
    assert_eq!(m.from_addr(), "backupd@example.com");
    assert_eq!(m.to_addrs(), vec!["ops@example.com", "dba@example.com"]);
    assert_eq!(m.to.len(), 2);
    assert!(m.to[0].contains("Ops Team"), "{:?}", m.to);
    assert_eq!(m.body, "line one\nline two\n");
    assert!(!m.tls);
    assert_eq!(m.auth_user, None);
    assert_eq!(m.envelope_from, "backupd@example.com");
    assert_eq!(m.envelope_to, vec!["ops@example.com", "dba@example.com"]);
    assert!(m.header("Date").is_some());
    assert!(m.raw.contains("Subject: backup ok"));
}

#[tokio::test]
async fn starttls_with_auth() {
    let pki = TestPki::new();
    let server = SmtpServer::start(SmtpOptions::starttls(&pki).with_auth(USER, PASSWORD));
    assert_eq!(server.options().mode, SmtpMode::StartTls);
    let t = transport(
        server.port(),
        Tls::Required(params(&pki)),
        Some((USER, PASSWORD)),
    );
    t.send(message("over starttls", "secret stuff"))
        .await
        .unwrap();

    let m = &server.wait_for(1, WAIT)[0];
    assert!(m.tls, "session should be TLS");
    assert_eq!(m.auth_user.as_deref(), Some(USER));
    assert_eq!(m.subject, "over starttls");
    assert_eq!(m.body, "secret stuff");

    // The password is never written anywhere in the maildir.
    for entry in std::fs::read_dir(server.maildir()).unwrap() {
        let content = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!String::from_utf8_lossy(&content).contains(PASSWORD));
    }
}

#[tokio::test]
async fn starttls_is_required_before_mail() {
    let pki = TestPki::new();
    let server = SmtpServer::start(SmtpOptions::starttls(&pki));
    let t = transport(server.port(), Tls::None, None);
    let err = t.send(message("no tls", "x")).await.unwrap_err();
    assert!(err.is_permanent(), "{}", chain(&err));
    assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("530"));
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn implicit_tls_with_auth() {
    let pki = TestPki::new();
    let server = SmtpServer::start(SmtpOptions::tls(&pki).with_auth(USER, PASSWORD));
    let t = transport(
        server.port(),
        Tls::Wrapper(params(&pki)),
        Some((USER, PASSWORD)),
    );
    t.send(message("over implicit tls", "wrapped"))
        .await
        .unwrap();

    let m = &server.wait_for(1, WAIT)[0];
    assert!(m.tls);
    assert_eq!(m.auth_user.as_deref(), Some(USER));
    assert_eq!(m.subject, "over implicit tls");
    assert_eq!(m.body, "wrapped");
}

#[tokio::test]
async fn non_ascii_subject_and_body_round_trip() {
    let server = SmtpServer::start(SmtpOptions::plain());
    let t = transport(server.port(), Tls::None, None);

    // Long enough that lettre folds the encoded Subject over several lines,
    // and a body that forces a transfer encoding.
    let subject = "Sauvegarde échouée: «prod-rs0» — 日本語のテスト — Grüße aus Köln, \
                   naïve café résumé, ½ ✓ 🚨 and a tail to force folding";
    let body = format!(
        "Bonjour,\nla sauvegarde a échoué à 03:00 (UTC).\nÜmlauts: äöü ß — ✓\n{}\n= sign and tabs\tend\n",
        "très long ".repeat(20)
    );
    t.send(message(subject, &body)).await.unwrap();

    // multipart/alternative: the text/plain part is the body.
    let alt = Message::builder()
        .from("backupd@example.com".parse::<Mailbox>().unwrap())
        .to("ops@example.com".parse::<Mailbox>().unwrap())
        .subject("Ünïcödé alternative")
        .multipart(MultiPart::alternative_plain_html(
            "plain: café ✓".to_string(),
            "<p>html: café ✓</p>".to_string(),
        ))
        .unwrap();
    t.send(alt).await.unwrap();

    let msgs = server.wait_for(2, WAIT);
    let raw_subject = msgs[0].header("Subject").unwrap();
    assert!(
        raw_subject.contains("=?"),
        "lettre should encode the subject: {raw_subject}"
    );
    let after_subject = msgs[0].raw.split("\r\nSubject:").nth(1).unwrap();
    let subject_lines: Vec<&str> = after_subject.split("\r\n").collect();
    assert!(
        subject_lines[1].starts_with(' '),
        "expected a folded Subject in:\n{}",
        msgs[0].raw
    );
    assert_eq!(msgs[0].subject, subject);
    assert_eq!(msgs[0].body, body);

    assert_eq!(msgs[1].subject, "Ünïcödé alternative");
    assert_eq!(msgs[1].body, "plain: café ✓");
}

#[tokio::test]
async fn wrong_password_is_a_permanent_535() {
    let pki = TestPki::new();
    let server = SmtpServer::start(SmtpOptions::starttls(&pki).with_auth(USER, PASSWORD));
    let t = transport(
        server.port(),
        Tls::Required(params(&pki)),
        Some((USER, "wrong")),
    );
    let err = t.send(message("nope", "x")).await.unwrap_err();
    assert!(err.is_permanent(), "{}", chain(&err));
    assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("535"));
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn untrusted_ca_fails_the_handshake() {
    let trusted = TestPki::new();
    let other = TestPki::untrusted();
    for opts in [SmtpOptions::starttls(&other), SmtpOptions::tls(&other)] {
        let mode = opts.mode;
        let server = SmtpServer::start(opts);
        let tls = match mode {
            SmtpMode::StartTls => Tls::Required(params(&trusted)),
            _ => Tls::Wrapper(params(&trusted)),
        };
        let err = transport(server.port(), tls, None)
            .send(message("x", "x"))
            .await
            .unwrap_err();
        let text = chain(&err);
        // lettre 0.11 maps rustls handshake failures to a connection error
        // (`is_tls()` is false); the rustls cause is in the source chain.
        assert!(
            text.contains("UnknownIssuer"),
            "{mode:?}: expected an UnknownIssuer TLS error, got {text}"
        );
        assert!(server.messages().is_empty());
    }
}

#[tokio::test]
async fn certificate_for_another_name_fails_the_handshake() {
    let pki = TestPki::wrong_host();
    let server = SmtpServer::start(SmtpOptions::tls(&pki));
    let err = transport(server.port(), Tls::Wrapper(params(&pki)), None)
        .send(message("x", "x"))
        .await
        .unwrap_err();
    let text = chain(&err);
    assert!(
        text.contains("NotValidForName"),
        "expected a name mismatch, got {text}"
    );
}

#[tokio::test]
async fn stop_and_restart_keep_the_maildir() {
    let pki = TestPki::new();
    let mut server = SmtpServer::start(SmtpOptions::starttls(&pki).with_auth(USER, PASSWORD));
    let port = server.port();
    let t = transport(port, Tls::Required(params(&pki)), Some((USER, PASSWORD)));
    t.send(message("before stop", "1")).await.unwrap();
    server.wait_for(1, WAIT);

    server.stop();
    assert!(!server.is_running());
    let err = t.send(message("while stopped", "2")).await.unwrap_err();
    assert!(
        !err.is_permanent() && !err.is_transient(),
        "{}",
        chain(&err)
    );

    // The certificate files are the server's own copies: the PKI may go.
    let ca = pki.lettre_ca();
    drop(pki);
    server.restart();
    assert_eq!(server.port(), port);
    assert!(server.is_running());
    let params = TlsParameters::builder("localhost".into())
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let t = transport(port, Tls::Required(params), Some((USER, PASSWORD)));
    t.send(message("after restart", "3")).await.unwrap();

    let msgs = server.wait_for(2, WAIT);
    let subjects: Vec<&str> = msgs.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects, vec!["before stop", "after restart"]);
    assert_eq!(msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert!(server.log().contains("AUTH"));
}

#[tokio::test]
async fn restart_retries_while_the_port_is_taken() {
    let mut server = SmtpServer::start(SmtpOptions::plain());
    let port = server.port();
    server.stop();

    // Hold the port until the restarting server has failed to bind once.
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let log_path = server.log_path().to_path_buf();
    let releaser = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if log.contains("address already in use") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(squatter);
    });
    server.restart();
    releaser.join().unwrap();
    assert_eq!(server.port(), port);
    assert!(server.log().contains("address already in use"));

    transport(port, Tls::None, None)
        .send(message("after rebind", "x"))
        .await
        .unwrap();
    assert_eq!(server.wait_for(1, WAIT)[0].subject, "after rebind");
}

#[tokio::test]
async fn rejecting_server_gives_transient_or_permanent_errors() {
    let server = SmtpServer::start(SmtpOptions::plain().with_reject(450));
    let err = transport(server.port(), Tls::None, None)
        .send(message("x", "x"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{}", chain(&err));
    assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("450"));

    let server550 = SmtpServer::start(SmtpOptions::plain().with_reject(550));
    let err = transport(server550.port(), Tls::None, None)
        .send(message("x", "x"))
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{}", chain(&err));
    assert_eq!(err.status().map(|c| c.to_string()).as_deref(), Some("550"));
    assert!(server.messages().is_empty() && server550.messages().is_empty());
}

#[tokio::test]
async fn auth_over_plaintext_only_when_allowed() {
    // Without --auth-plaintext AUTH is not offered before TLS: lettre refuses
    // to send credentials it cannot use, and the server demands AUTH.
    let server = SmtpServer::start(SmtpOptions::plain().with_auth(USER, PASSWORD));
    let err = transport(server.port(), Tls::None, Some((USER, PASSWORD)))
        .send(message("x", "x"))
        .await
        .unwrap_err();
    assert!(err.is_client(), "{}", chain(&err));
    assert!(chain(&err).contains("No compatible authentication mechanism"));
    assert!(server.messages().is_empty());

    let server = SmtpServer::start(
        SmtpOptions::plain()
            .with_auth(USER, PASSWORD)
            .with_auth_plaintext(),
    );
    transport(server.port(), Tls::None, Some((USER, PASSWORD)))
        .send(message("plaintext auth", "x"))
        .await
        .unwrap();
    let m = &server.wait_for(1, WAIT)[0];
    assert!(!m.tls);
    assert_eq!(m.auth_user.as_deref(), Some(USER));
}

#[test]
fn decoders() {
    assert_eq!(
        smtp::decode_rfc2047("=?utf-8?b?w6l0w6k=?=\r\n =?UTF-8?Q?_=C3=A0_Paris?= ok"),
        "été à Paris ok"
    );
    // A multi-byte character split across two encoded words.
    assert_eq!(
        smtp::decode_rfc2047("=?utf-8?b?4pw=?= =?utf-8?b?kw==?="),
        "✓"
    );
    assert_eq!(
        smtp::decode_rfc2047("plain =?iso-8859-1?q?caf=E9?="),
        "plain café"
    );
    assert_eq!(
        smtp::decode_quoted_printable(b"caf=C3=A9 =\r\nsoft=3D"),
        "café soft=".as_bytes()
    );
    assert_eq!(smtp::decode_base64(b"w6l0\r\nw6k="), "été".as_bytes());
}
