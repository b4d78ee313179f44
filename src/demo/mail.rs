//! Reading a received mail back for the terminal: its subject and the first
//! lines of its body, decoded from the transfer encodings a mail library
//! may pick (quoted-printable, base64, RFC 2047 encoded words in headers).
//! Only what the demo needs to show alert mails; not a MIME parser.

/// A mail as received, split into what the demo prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub subject: String,
    pub body: String,
}

/// Splits `raw` (headers, blank line, body) and decodes both parts.
pub fn show(raw: &str) -> Shown {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let headers = unfold(head);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let subject = decode_words(header("Subject").unwrap_or(""));
    let encoding = header("Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let body = match encoding.as_str() {
        "quoted-printable" => quoted_printable(body),
        "base64" => {
            let bytes = base64(&body.replace(['\n', ' '], ""));
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_string(),
    };
    Shown { subject, body }
}

/// Header lines joined with their continuation lines, as (name, value).
fn unfold(head: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = out.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

/// Decodes `=?charset?B|Q?text?=` words (the charset is taken as UTF-8,
/// which is what lettre writes); whitespace between two encoded words is
/// dropped, as RFC 2047 says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, word) = rest.split_at(start);
        let decoded = parse_word(word);
        let Some((text, len)) = decoded else {
            out.push_str(before);
            out.push_str("=?");
            rest = &word[2..];
            after_word = false;
            continue;
        };
        if !(after_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&text);
        rest = &word[len..];
        after_word = true;
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// One encoded word at the start of `s`: its text and its length.
fn parse_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let mut parts = inner.splitn(3, '?');
    let _charset = parts.next()?;
    let kind = parts.next()?;
    let tail = parts.next()?;
    let end = tail.find("?=")?;
    let text = &tail[..end];
    let len = 2 + inner.len() - tail.len() + end + 2;
    let bytes = match kind {
        "B" | "b" => base64(text),
        "Q" | "q" => hex_escapes(&text.replace('_', " ")),
        _ => return None,
    };
    Some((String::from_utf8_lossy(&bytes).into_owned(), len))
}

fn quoted_printable(body: &str) -> String {
    // A `=` at the end of a line is a soft break: the line continues.
    let joined = body.replace("=\n", "");
    String::from_utf8_lossy(&hex_escapes(&joined)).into_owned()
}

/// `=XX` escapes to bytes; anything else as it is.
fn hex_escapes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Standard base64 (padding optional); characters outside the alphabet
/// are skipped.
fn base64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for v in s.bytes().filter_map(value) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_mail_with_a_folded_subject() {
        let raw = "From: a@b\r\nSubject: [x] FAILED full backup\r\n of job \"broken\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\nLine one\r\nLine two\r\n";
        let m = show(raw);
        assert_eq!(m.subject, "[x] FAILED full backup of job \"broken\"");
        assert_eq!(m.body, "Line one\nLine two\n");
    }

    #[test]
    fn quoted_printable_and_base64_bodies_are_decoded() {
        let qp = "Subject: s\nContent-Transfer-Encoding: quoted-printable\n\nJob =C3=BC is a very long li=\nne\n";
        assert_eq!(show(qp).body, "Job ü is a very long line\n");
        let b64 = "Subject: s\nContent-Transfer-Encoding: base64\n\nSGVsbG8s\nIHdvcmxkIQ==\n";
        assert_eq!(show(b64).body, "Hello, world!");
    }

    #[test]
    fn encoded_words_in_the_subject_are_decoded() {
        let raw = "Subject: =?utf-8?b?RkFJTEVE?= =?utf-8?q?_backup_=C3=BC?= done\n\nx";
        assert_eq!(show(raw).subject, "FAILED backup ü done");
        assert_eq!(show("Subject: a =? b\n\n").subject, "a =? b");
    }
}
