//! Random bytes and deterministic mutations of valid request lines, fed to
//! the request parser and to a live server: anyone in the control group
//! can send anything, and the daemon must neither panic nor hang, and must
//! answer every line (or close the connection after an oversized one).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use super::*;
use crate::control::protocol::{read_line, Line, MAX_REQUEST_LINE};

/// xorshift64*: deterministic, so a failure replays with its case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    fn string(&mut self) -> String {
        const CHARS: &[char] = &[
            'a', 'Z', '0', '-', '_', ' ', '"', '\\', '\n', '\r', '\t', '\0', 'ü', '😀', '\u{7f}',
            '\u{feff}', '/', '{', '}',
        ];
        (0..self.below(12))
            .map(|_| CHARS[self.below(CHARS.len())])
            .collect()
    }
}

/// Fragments that tend to break JSON readers and request validation.
const JUNK: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "\\",
    ":",
    ",",
    "null",
    "true",
    "false",
    "-1",
    "1.5",
    "1e999",
    "18446744073709551616",
    "-0",
    "\"v\":2",
    "\"v\":1,",
    "\"op\":\"status\"",
    "\"op\":",
    "\\u0000",
    "\\ud800",
    "ü",
    "😀",
    "\0",
    "\r",
    "\n",
    "\t",
    "   ",
    "\"wait\":true",
    "\"job\":null",
    "\"id\":",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "\u{feff}",
    "\"extra\":{}",
];

fn corpus() -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = all_requests()
        .iter()
        .map(|r| r.encode().into_bytes())
        .collect();
    lines.push(
        br#"{"v":1,"op":"backup_now","job":"x","manual":true,"note":"...","wait":true}"#.to_vec(),
    );
    lines.push(br#"{"v":1,"op":"history","job":null,"limit":20}"#.to_vec());
    lines
}

fn mutate(rng: &mut Rng, line: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut out = line.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(8) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.next() as u8),
            2 => {
                let end = (at + rng.below(8)).min(out.len());
                out.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(16)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            4 => {
                let junk = JUNK[rng.below(JUNK.len())].as_bytes();
                out.splice(at..at, junk.iter().copied());
            }
            5 => out.truncate(at),
            6 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next() as u8;
            }
            _ => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                out.truncate(at);
                out.extend_from_slice(&other[from..]);
            }
        }
    }
    out
}

/// One case: mostly mutations, some pure noise, a few near and over the
/// line limit.
fn case(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(100) {
        0..=64 => {
            let base = corpus[rng.below(corpus.len())].clone();
            mutate(rng, &base, corpus)
        }
        65..=79 => {
            let len = rng.below(200);
            rng.bytes(len)
        }
        80..=89 => (0..rng.below(100))
            .map(|_| b' ' + rng.below(95) as u8)
            .collect(),
        90..=97 => corpus[rng.below(corpus.len())].clone(),
        _ => {
            let len = MAX_REQUEST_LINE - 100 + rng.below(300);
            let mut big = vec![b' '; len];
            big.extend_from_slice(br#"{"v":1,"op":"status"}"#);
            big
        }
    }
}

fn random_request(rng: &mut Rng) -> ClientRequest {
    let job = |rng: &mut Rng| (rng.below(2) == 0).then(|| rng.string());
    match rng.below(8) {
        0 => ClientRequest::Status,
        1 => ClientRequest::BackupNow {
            job: rng.string(),
            manual: rng.below(2) == 0,
            note: job(rng),
            wait: rng.below(2) == 0,
        },
        2 => ClientRequest::Run { id: rng.next() },
        3 => ClientRequest::Pause { job: rng.string() },
        4 => ClientRequest::Resume { job: rng.string() },
        5 => ClientRequest::Backups { job: job(rng) },
        6 => ClientRequest::History {
            job: job(rng),
            limit: (rng.below(2) == 0).then(|| rng.next() as usize),
        },
        _ => ClientRequest::PrunePlan { job: job(rng) },
    }
}

#[test]
fn control_fuzz_random_requests_round_trip() {
    let mut rng = Rng(0x5eed_0001);
    for n in 0..5000 {
        let req = random_request(&mut rng);
        let line = req.encode();
        assert!(!line.contains('\n'), "case {n}: {line}");
        assert_eq!(parse_request(line.as_bytes()).unwrap(), req, "case {n}");
    }
}

#[test]
fn control_fuzz_parser_never_panics() {
    let corpus = corpus();
    let mut rng = Rng(0x5eed_0002);
    for n in 0..20_000 {
        let input = case(&mut rng, &corpus);
        let parsed = catch_unwind(AssertUnwindSafe(|| parse_request(&input)))
            .unwrap_or_else(|_| panic!("case {n} panicked: {:?}", String::from_utf8_lossy(&input)));
        match parsed {
            // Whatever parses is a request that survives its own encoding.
            Ok(req) => assert_eq!(
                parse_request(req.encode().as_bytes()).unwrap(),
                req,
                "case {n}"
            ),
            Err(e) => {
                assert_eq!(e.code, ErrorCode::InvalidRequest, "case {n}");
                assert!(!e.message.is_empty(), "case {n}");
            }
        }
    }
}

struct Conn {
    reader: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

async fn connect(socket: &std::path::Path) -> Conn {
    let (read, write) = UnixStream::connect(socket).await.unwrap().into_split();
    Conn {
        reader: BufReader::new(read),
        write,
    }
}

/// Sends `payload` plus a newline; checks each line gets one answer (after
/// any run events) that agrees with the parser, until an oversized line,
/// whose refusal is followed by the close. `false` if the server closed.
async fn exchange(conn: &mut Conn, payload: &[u8], n: usize) -> bool {
    let lines: Vec<&[u8]> = payload.split(|&b| b == b'\n').collect();
    let cut = lines.iter().position(|l| l.len() > MAX_REQUEST_LINE);
    let answered = cut.map_or(lines.len(), |c| c + 1);
    let mut bytes = payload.to_vec();
    bytes.push(b'\n');
    let Conn { reader, write } = conn;
    let send = async {
        // The server may close before reading everything after a cut.
        let _ = write.write_all(&bytes).await;
    };
    let receive = async {
        for (i, line) in lines.iter().take(answered).enumerate() {
            let answer = loop {
                match read_line(reader, 1 << 24).await {
                    Ok(Line::Text(t)) => {
                        let text = String::from_utf8(t).unwrap();
                        match parse_answer(&text) {
                            Ok(ServerLine::Event(_)) => continue,
                            Ok(a) => break a,
                            Err(e) => panic!("case {n}: unreadable answer {text:?}: {e}"),
                        }
                    }
                    other => panic!("case {n}: line {i} got no answer ({other:?})"),
                }
            };
            let want_invalid = Some(i) == cut || parse_request(line).is_err();
            let invalid =
                matches!(&answer, ServerLine::Err(e) if e.code == ErrorCode::InvalidRequest);
            assert_eq!(
                invalid,
                want_invalid,
                "case {n} line {i}: {answer:?} for {:?}",
                String::from_utf8_lossy(line)
            );
        }
        if cut.is_some() {
            // Closed (or reset) after the refusal: nothing more arrives.
            let rest = read_line(reader, 1 << 24).await;
            assert!(matches!(rest, Ok(Line::Eof) | Err(_)), "case {n}: {rest:?}");
        }
    };
    let both = async { tokio::join!(send, receive) };
    if tokio::time::timeout(Duration::from_secs(5), both)
        .await
        .is_err()
    {
        panic!(
            "case {n}: no answer within 5 s to {:?}",
            String::from_utf8_lossy(&payload[..payload.len().min(200)])
        );
    }
    cut.is_none()
}

#[tokio::test]
async fn control_fuzz_live_server_answers_every_line() {
    let server = start(
        fast_limits(),
        StandIn {
            step: Duration::ZERO,
        },
    )
    .await;
    let corpus = corpus();
    let mut rng = Rng(0x5eed_0003);
    let mut conn = None;
    for n in 0..2500 {
        let mut payload = case(&mut rng, &corpus);
        // Now and then several requests in one write.
        if rng.below(10) == 0 {
            payload.push(b'\n');
            payload.extend(case(&mut rng, &corpus));
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => connect(&server.socket).await,
        };
        if exchange(&mut c, &payload, n).await {
            conn = Some(c);
        }
    }
    // Still serving normally afterwards.
    let status: Status = crate::control::request(&server.socket, &ClientRequest::Status)
        .await
        .unwrap();
    assert_eq!(status.pid, 4242);
}
