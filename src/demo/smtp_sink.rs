//! A tiny SMTP server on 127.0.0.1 that accepts every mail and keeps it:
//! the demo's stand-in for the on-call mailbox, so the daemon's real alert
//! path (policy, rendering, lettre over TCP) runs end to end without a
//! mail server.
//!
//! It speaks the part of RFC 5321 a client needs to hand over a message in
//! clear text — HELO/EHLO, MAIL, RCPT, DATA (with dot-unstuffing), RSET,
//! NOOP, QUIT — appends each message to a file in mbox format (readable
//! with `mutt -f` or any text editor) and hands it to the demo to print.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longest command line accepted (RFC 5321 allows 512 octets).
const MAX_LINE: u64 = 4096;
/// Largest message accepted; alert mails are a few kilobytes.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;
const NAME: &str = "mongo-backupd-demo";

/// A message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// 1 for the first message, and so on.
    pub number: u64,
    pub at: DateTime<Utc>,
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, CRLF line ends, dot-unstuffed.
    pub data: String,
}

struct Shared {
    mailbox: PathBuf,
    /// Serialises appends to the mailbox file.
    write: Mutex<()>,
    count: AtomicU64,
    tx: mpsc::UnboundedSender<Received>,
}

/// The running sink.
pub struct SmtpSink {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl SmtpSink {
    /// Listens on a free port of 127.0.0.1; every message is appended to
    /// `mailbox` and sent on `tx`.
    pub async fn start(
        mailbox: PathBuf,
        tx: mpsc::UnboundedSender<Received>,
    ) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mailbox,
            write: Mutex::new(()),
            count: AtomicU64::new(0),
            tx,
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept(listener, shared, stop.clone()));
        Ok(SmtpSink { addr, stop, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening and ends the conversations under way.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("The demo's SMTP sink could not accept a connection: {e}.");
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                r = session(stream, &shared) => if let Err(e) = r {
                    tracing::warn!("The demo's SMTP sink lost a connection: {e}.");
                },
            }
        });
    }
}

/// One client's conversation, until QUIT or the connection closes.
async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(format!("220 {NAME} ESMTP ready\r\n").as_bytes())
        .await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(&mut reader).await? else {
            return Ok(());
        };
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" => {
                format!("250-{NAME} greets you\r\n250-8BITMIME\r\n250 SIZE {MAX_MESSAGE}\r\n")
            }
            "HELO" => format!("250 {NAME}\r\n"),
            "MAIL" => {
                from = Some(address(&line));
                to.clear();
                "250 2.1.0 OK\r\n".to_string()
            }
            "RCPT" if from.is_none() => "503 5.5.1 MAIL first\r\n".to_string(),
            "RCPT" => {
                to.push(address(&line));
                "250 2.1.5 OK\r\n".to_string()
            }
            "DATA" if to.is_empty() => "503 5.5.1 RCPT first\r\n".to_string(),
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let Some(data) = read_data(&mut reader).await? else {
                    write.write_all(b"552 5.3.4 Message too big\r\n").await?;
                    return Ok(());
                };
                let received = Received {
                    number: shared.count.fetch_add(1, Ordering::Relaxed) + 1,
                    at: Utc::now(),
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                };
                keep(shared, &received).await?;
                let reply = format!("250 2.0.0 OK: queued as {}\r\n", received.number);
                let _ = shared.tx.send(received);
                reply
            }
            "RSET" => {
                from = None;
                to.clear();
                "250 2.0.0 OK\r\n".to_string()
            }
            "NOOP" => "250 2.0.0 OK\r\n".to_string(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not implemented\r\n".to_string(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// The next line without its line end; None at the end of the stream.
async fn read_line<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = (&mut *reader)
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(None);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The message after DATA up to the lone `.`, dot-unstuffed; None if it
/// is larger than the sink accepts or the client hung up.
async fn read_data<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Option<String>> {
    let mut data = String::new();
    loop {
        let Some(line) = read_line(reader).await? else {
            return Ok(None);
        };
        if line == "." {
            return Ok(Some(data));
        }
        // A leading dot was doubled by the client so it is not the end.
        let line = line.strip_prefix('.').unwrap_or(&line);
        data.push_str(line);
        data.push_str("\r\n");
        if data.len() > MAX_MESSAGE {
            return Ok(None);
        }
    }
}

/// `MAIL FROM:<a@b> SIZE=10` → `a@b`.
fn address(line: &str) -> String {
    match (line.find('<'), line.find('>')) {
        (Some(start), Some(end)) if start < end => line[start + 1..end].to_string(),
        _ => line
            .split_once(':')
            .map(|(_, a)| a.trim().to_string())
            .unwrap_or_default(),
    }
}

/// Appends the message to the mailbox in mbox format: a `From ` line,
/// the message with `From ` lines quoted, a blank line.
async fn keep(shared: &Shared, m: &Received) -> std::io::Result<()> {
    let sender = if m.from.is_empty() {
        "MAILER-DAEMON"
    } else {
        m.from.as_str()
    };
    let mut text = format!("From {sender} {}\n", m.at.format("%a %b %e %H:%M:%S %Y"));
    for line in m.data.lines() {
        if line.trim_start_matches('>').starts_with("From ") {
            text.push('>');
        }
        text.push_str(line);
        text.push('\n');
    }
    text.push('\n');
    let _guard = shared.write.lock().await;
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&shared.mailbox)
        .await?;
    file.write_all(text.as_bytes()).await?;
    file.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::smtp::{deliver, Mail};
    use crate::config::{EmailSettings, SmtpTls};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    async fn expect(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, code: &str) {
        loop {
            let line = read_line(reader).await.unwrap().unwrap();
            assert!(line.starts_with(code), "expected {code}, got {line:?}");
            // Multi-line replies continue with `250-`.
            if line.as_bytes().get(3) != Some(&b'-') {
                return;
            }
        }
    }

    #[tokio::test]
    async fn the_daemons_own_mail_code_delivers_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox = dir.path().join("mail.txt");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = SmtpSink::start(mailbox.clone(), tx).await.unwrap();
        let settings = EmailSettings {
            host: "127.0.0.1".into(),
            port: sink.addr().port(),
            tls: SmtpTls::None,
            ca_file: None,
            username: None,
            password: None,
            from: "mongo-backupd <backupd@demo.invalid>".into(),
            to: vec!["oncall@demo.invalid".into(), "dba@demo.invalid".into()],
            subject_prefix: "[demo]".into(),
            timeout: Duration::from_secs(5),
            queue_limit: 10,
            retry_max_interval: Duration::from_secs(1),
        };
        let mail = Mail {
            subject: "[demo] FAILED full backup of job \"broken\"".into(),
            body: "The backup failed.\nFrom here on, a line that mbox must quote.\n.A line with a leading dot.\n".into(),
            extra_to: vec![],
        };
        deliver(&settings, &mail).await.unwrap();
        let got = rx.recv().await.unwrap();
        assert_eq!(got.number, 1);
        assert_eq!(got.from, "backupd@demo.invalid");
        assert_eq!(got.to, vec!["oncall@demo.invalid", "dba@demo.invalid"]);
        let shown = super::super::mail::show(&got.data);
        assert_eq!(shown.subject, mail.subject);
        assert!(
            shown.body.contains(".A line with a leading dot."),
            "{}",
            shown.body
        );
        sink.stop().await;
        let file = std::fs::read_to_string(&mailbox).unwrap();
        assert!(file.starts_with("From backupd@demo.invalid "), "{file}");
        assert!(
            file.contains("Subject: [demo] FAILED full backup"),
            "{file}"
        );
        assert!(file.contains("\n>From here on"), "{file}");
    }

    #[tokio::test]
    async fn it_follows_the_protocol_and_unstuffs_dots() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = SmtpSink::start(dir.path().join("mail.txt"), tx)
            .await
            .unwrap();
        let stream = TcpStream::connect(sink.addr()).await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        expect(&mut reader, "220").await;
        for (send, code) in [
            ("HELO client", "250"),
            ("RCPT TO:<x@y>", "503"),
            ("DATA", "503"),
            ("MAIL FROM:<a@b> SIZE=100", "250"),
            ("RCPT TO:<c@d>", "250"),
            ("VRFY c", "502"),
            ("DATA", "354"),
        ] {
            write
                .write_all(format!("{send}\r\n").as_bytes())
                .await
                .unwrap();
            expect(&mut reader, code).await;
        }
        write
            .write_all(b"Subject: hi\r\n\r\n..leading dot\r\nplain\r\n.\r\n")
            .await
            .unwrap();
        expect(&mut reader, "250").await;
        write.write_all(b"QUIT\r\n").await.unwrap();
        expect(&mut reader, "221").await;
        let got = rx.recv().await.unwrap();
        assert_eq!(got.data, "Subject: hi\r\n\r\n.leading dot\r\nplain\r\n");
        assert_eq!(
            (got.from.as_str(), got.to.as_slice()),
            ("a@b", &["c@d".to_string()][..])
        );
        sink.stop().await;
    }
}
