//! Delivering one mail over SMTP with lettre and rustls, step by step
//! (connect, TLS, AUTH, send), so a failure names the step that failed and
//! `test-alert` can show the conversation's outcome.
//!
//! The configured TLS mode is a requirement, never a preference: STARTTLS
//! that the server does not offer, or a certificate that does not verify,
//! ends the attempt; nothing is ever sent in clear text instead. The whole
//! attempt runs under one timeout, so a server that accepts the connection
//! and then says nothing cannot hold a delivery forever.

use std::fmt;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;

use crate::config::{EmailSettings, SmtpTls};

/// One mail, rendered and addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
    /// Extra recipients besides `[alerts.email] to` (a job's `alert_to`).
    pub extra_to: Vec<String>,
}

/// The step of the SMTP conversation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Prepare,
    Connect,
    StartTls,
    Auth,
    Send,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Prepare => "preparing the message",
            Step::Connect => "connecting",
            Step::StartTls => "STARTTLS",
            Step::Auth => "authentication",
            Step::Send => "sending",
        })
    }
}

/// Why a delivery failed: the server, the step, what happened and what to
/// do about it. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mail delivery via {server} failed at {step}: {detail}{}", advice.map(|a| format!(". {a}")).unwrap_or_default())]
pub struct SendError {
    pub server: String,
    pub step: Step,
    pub detail: String,
    pub advice: Option<&'static str>,
    /// A 5xx answer: retrying the same mail will not help.
    pub permanent: bool,
}

/// What the server said at each step that succeeded, for `test-alert`.
pub type Transcript = Vec<String>;

fn hello_name() -> ClientId {
    // The name we greet with; servers log it, some check it resolves.
    let name = hostname();
    ClientId::Domain(name)
}

/// This machine's name, for mails and the SMTP greeting.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

fn chain(e: &dyn std::error::Error) -> String {
    crate::error_chain(e)
}

struct Attempt<'a> {
    settings: &'a EmailSettings,
    server: String,
    /// The step under way, so a timeout names where it stalled.
    step: std::sync::Mutex<Step>,
}

impl Attempt<'_> {
    fn at(&self, step: Step) {
        if let Ok(mut s) = self.step.lock() {
            *s = step;
        }
    }

    fn fail(&self, step: Step, detail: String, advice: Option<&'static str>) -> SendError {
        SendError {
            server: self.server.clone(),
            step,
            detail,
            advice,
            permanent: false,
        }
    }

    /// Classifies a lettre error of `step` with the advice that fits.
    fn smtp(&self, step: Step, e: &lettre::transport::smtp::Error) -> SendError {
        let detail = chain(e);
        let lower = detail.to_lowercase();
        let advice = if lower.contains("certificate") || lower.contains("unknownissuer") {
            Some("The server's TLS certificate does not verify: if your mail relay uses a private CA, set ca_file to that CA's certificate; check that host matches a name in the certificate. Nothing was sent unencrypted")
        } else if e.is_tls() || lower.contains("tls") || lower.contains("handshake") {
            Some(match self.settings.tls {
                SmtpTls::Tls => "The TLS handshake failed: check that the port expects TLS from the first byte (usually 465); for a port that starts in clear text (587) use tls = \"starttls\". Nothing was sent unencrypted",
                _ => "The TLS handshake failed: check the server's TLS setup and tls/port in [alerts.email]. Nothing was sent unencrypted",
            })
        } else if e.is_timeout() {
            Some("The server did not answer in time (timeout in [alerts.email]): check host and port, and that the port's TLS mode matches tls")
        } else if step == Step::Auth {
            Some("Check username and the password in password_file / password_env")
        } else if step == Step::Connect {
            Some("Check host and port in [alerts.email], and that this host may reach the mail server (firewall)")
        } else if e.is_permanent() {
            Some("The server refused the mail: check from and to in [alerts.email] and that the server relays for this sender")
        } else {
            None
        };
        SendError {
            permanent: e.is_permanent(),
            ..self.fail(step, detail, advice)
        }
    }

    fn tls_parameters(&self) -> Result<TlsParameters, SendError> {
        let mut builder = TlsParameters::builder(self.settings.host.clone());
        if let Some(path) = &self.settings.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                self.fail(
                    Step::Prepare,
                    format!("cannot read ca_file {}: {e}", path.display()),
                    Some("Make the file readable by the daemon's user, or fix ca_file"),
                )
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                self.fail(
                    Step::Prepare,
                    format!("ca_file {} holds no usable PEM certificate: {}", path.display(), chain(&e)),
                    Some("ca_file must hold the CA certificate in PEM form (-----BEGIN CERTIFICATE-----)"),
                )
            })?;
            builder = builder.add_root_certificate(cert);
        }
        builder
            .build_rustls()
            .map_err(|e| self.fail(Step::Prepare, chain(&e), None))
    }

    fn message(&self, mail: &Mail) -> Result<(lettre::address::Envelope, Vec<u8>), SendError> {
        let bad = |what: &str, value: &str| {
            self.fail(
                Step::Prepare,
                format!("{what} {value:?} is not a valid email address"),
                Some("Fix it in the configuration"),
            )
        };
        let from: Mailbox = self
            .settings
            .from
            .parse()
            .map_err(|_| bad("from", &self.settings.from))?;
        let mut builder = Message::builder()
            .from(from)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        let mut seen = Vec::new();
        for to in self.settings.to.iter().chain(&mail.extra_to) {
            let mailbox: Mailbox = to.parse().map_err(|_| bad("recipient", to))?;
            if seen.contains(&mailbox.email) {
                continue;
            }
            seen.push(mailbox.email.clone());
            builder = builder.to(mailbox);
        }
        let message = builder
            .body(mail.body.clone())
            .map_err(|e| self.fail(Step::Prepare, chain(&e), None))?;
        Ok((message.envelope().clone(), message.formatted()))
    }

    fn credentials(&self) -> Result<Option<Credentials>, SendError> {
        let (Some(user), Some(secret)) = (&self.settings.username, &self.settings.password) else {
            return Ok(None);
        };
        let password = secret.read().map_err(|why| {
            self.fail(
                Step::Prepare,
                format!("cannot read the SMTP password: {why}"),
                Some("Fix password_file / password_env in [alerts.email] (the file must be readable by the daemon's user)"),
            )
        })?;
        Ok(Some(Credentials::new(user.clone(), password)))
    }

    async fn run(&self, mail: &Mail) -> Result<Transcript, SendError> {
        let s = self.settings;
        let (envelope, bytes) = self.message(mail)?;
        let credentials = self.credentials()?;
        let tls = match s.tls {
            SmtpTls::None => None,
            _ => Some(self.tls_parameters()?),
        };
        let hello = hello_name();
        let mut transcript = Vec::new();
        let wrapper = match s.tls {
            SmtpTls::Tls => tls.clone(),
            _ => None,
        };
        self.at(Step::Connect);
        let mut conn = AsyncSmtpConnection::connect_tokio1(
            (s.host.as_str(), s.port),
            Some(s.timeout),
            &hello,
            wrapper,
            None,
        )
        .await
        .map_err(|e| self.smtp(Step::Connect, &e))?;
        transcript.push(format!(
            "connected to {}:{}{}",
            s.host,
            s.port,
            if conn.is_encrypted() {
                " with TLS (certificate verified)"
            } else {
                ""
            }
        ));
        if s.tls == SmtpTls::StartTls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(self.fail(
                    Step::StartTls,
                    "the server does not offer STARTTLS".into(),
                    Some("tls = \"starttls\" requires it and never falls back to clear text: enable STARTTLS on the server, use tls = \"tls\" for a port with TLS from the first byte, or tls = \"none\" only for a relay on a trusted network"),
                ));
            }
            self.at(Step::StartTls);
            let params = match tls {
                Some(p) => p,
                None => self.tls_parameters()?,
            };
            if let Err(e) = conn.starttls(params, &hello).await {
                // No QUIT: a failed upgrade leaves lettre without a stream
                // to write it to. Dropping the connection closes it.
                return Err(self.smtp(Step::StartTls, &e));
            }
            transcript.push("STARTTLS: TLS established, certificate verified".into());
        }
        if let Some(creds) = &credentials {
            self.at(Step::Auth);
            match conn
                .auth(&[Mechanism::Plain, Mechanism::Login], creds)
                .await
            {
                Ok(_) => transcript.push(format!(
                    "AUTH: accepted for user {:?}",
                    s.username.as_deref().unwrap_or("")
                )),
                Err(e) => {
                    conn.abort().await;
                    return Err(self.smtp(Step::Auth, &e));
                }
            }
        }
        self.at(Step::Send);
        match conn.send(&envelope, &bytes).await {
            Ok(response) => {
                let text: Vec<&str> = response.message().collect();
                transcript.push(format!(
                    "message accepted for {} recipient{}: {} {}",
                    envelope.to().len(),
                    if envelope.to().len() == 1 { "" } else { "s" },
                    response.code(),
                    text.join(" ")
                ));
            }
            Err(e) => {
                conn.abort().await;
                return Err(self.smtp(Step::Send, &e));
            }
        }
        // The mail is delivered; a failed QUIT changes nothing.
        let _ = conn.quit().await;
        Ok(transcript)
    }
}

/// Delivers `mail` with the settings' TLS mode, credentials and timeout.
pub async fn deliver(settings: &EmailSettings, mail: &Mail) -> Result<Transcript, SendError> {
    let attempt = Attempt {
        settings,
        server: settings.server_label(),
        step: std::sync::Mutex::new(Step::Prepare),
    };
    match tokio::time::timeout(settings.timeout, attempt.run(mail)).await {
        Ok(result) => result,
        Err(_) => Err(attempt.fail(
            attempt.step.lock().map_or(Step::Send, |s| *s),
            format!(
                "no complete answer within {} (timeout)",
                crate::config::format_duration(settings.timeout)
            ),
            Some("Check host and port, and that the port's TLS mode matches tls in [alerts.email]"),
        )),
    }
}
