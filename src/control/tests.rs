//! Tests of the control socket: the wire format here, the server and client
//! over real sockets in `socket`, random and mutated input in `fuzz`. The
//! daemon is replaced by a stand-in loop with canned answers, so these
//! tests pin the front end, not the scheduler.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod fuzz;
mod socket;
mod stand_in;

use super::protocol::{self, parse_answer, parse_request, ClientRequest, ServerLine};
use super::server::{self, Limits};
use crate::daemon::api::{ApiError, ErrorCode, JobActivity, JobStatus, RunInfo, RunState, Status};
use stand_in::{fast_limits, sample_run, sample_status, start, StandIn};

fn all_requests() -> Vec<ClientRequest> {
    vec![
        ClientRequest::Status,
        ClientRequest::BackupNow {
            job: "x".into(),
            manual: true,
            note: Some("before the \"migration\"\nline two ü".into()),
            wait: true,
        },
        ClientRequest::BackupNow {
            job: "prod-full".into(),
            manual: false,
            note: None,
            wait: false,
        },
        ClientRequest::Run { id: u64::MAX },
        ClientRequest::Pause { job: "x".into() },
        ClientRequest::Resume { job: "x".into() },
        ClientRequest::Backups { job: None },
        ClientRequest::History {
            job: Some("x".into()),
            limit: Some(20),
        },
        ClientRequest::PrunePlan { job: None },
    ]
}

#[test]
fn control_requests_round_trip_as_one_line() {
    for req in all_requests() {
        let line = req.encode();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with(r#"{"v":1,"op":"#), "{line}");
        assert_eq!(parse_request(line.as_bytes()).unwrap(), req);
    }
}

#[test]
fn control_requests_parse_as_documented() {
    let cases = [
        (r#"{"v":1,"op":"status"}"#, ClientRequest::Status),
        (
            r#"{"v":1,"op":"backup_now","job":"x","manual":true,"note":"n","wait":true}"#,
            ClientRequest::BackupNow {
                job: "x".into(),
                manual: true,
                note: Some("n".into()),
                wait: true,
            },
        ),
        (
            r#"{"v":1,"op":"backup_now","job":"x"}"#,
            ClientRequest::BackupNow {
                job: "x".into(),
                manual: false,
                note: None,
                wait: false,
            },
        ),
        (r#"{"op":"run","id":7,"v":1}"#, ClientRequest::Run { id: 7 }),
        (
            r#"{"v":1,"op":"backups","job":null}"#,
            ClientRequest::Backups { job: None },
        ),
        (
            r#"{"v":1,"op":"history","job":null,"limit":20}"#,
            ClientRequest::History {
                job: None,
                limit: Some(20),
            },
        ),
        (
            r#"{"v":1,"op":"prune_plan"}"#,
            ClientRequest::PrunePlan { job: None },
        ),
        ("{\"v\":1,\"op\":\"status\"}\r", ClientRequest::Status),
    ];
    for (line, want) in cases {
        assert_eq!(parse_request(line.as_bytes()).unwrap(), want, "{line}");
    }
}

fn refused(line: &[u8]) -> ApiError {
    let e = parse_request(line).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidRequest, "{e}");
    e
}

#[test]
fn control_unknown_versions_are_refused_naming_the_supported_one() {
    for line in [
        r#"{"v":2,"op":"status"}"#,
        r#"{"v":0,"op":"nonsense"}"#,
        r#"{"v":"1","op":"status"}"#,
        r#"{"v":1.5,"op":"status"}"#,
        r#"{"v":-1,"op":"status"}"#,
    ] {
        let e = refused(line.as_bytes());
        assert!(e.message.contains("speaks version 1"), "{line}: {e}");
    }
    let e = refused(br#"{"op":"status"}"#);
    assert!(e.message.contains("no protocol version"), "{e}");
}

#[test]
fn control_malformed_requests_are_invalid() {
    for line in [
        &b""[..],
        b"   ",
        b"status",
        b"{",
        b"[1,2]",
        b"null",
        b"\xff\xfe{}",
        br#"{"v":1}"#,
        br#"{"v":1,"op":"explode"}"#,
        br#"{"v":1,"op":"run"}"#,
        br#"{"v":1,"op":"run","id":-7}"#,
        br#"{"v":1,"op":"backup_now"}"#,
        br#"{"v":1,"op":"status","extra":true}"#,
        br#"{"v":1,"op":"history","limit":"all"}"#,
        br#"{"v":1,"op":"status"} trailing"#,
    ] {
        refused(line);
    }
    let e = refused(b"{");
    assert!(e.message.contains("not valid JSON"), "{e}");
    let e = refused(br#"{"v":1,"op":"explode"}"#);
    assert!(e.message.contains("explode"), "{e}");
}

#[test]
fn control_answers_round_trip() {
    let run = sample_run(7, "x", RunState::Running);
    let line = protocol::encode_event(&run);
    assert!(
        line.starts_with(r#"{"v":1,"event":"run","run":{"#),
        "{line}"
    );
    assert_eq!(parse_answer(&line).unwrap(), ServerLine::Event(run.clone()));

    let line = protocol::encode_result(&run);
    assert!(line.starts_with(r#"{"v":1,"ok":true,"result":{"#), "{line}");
    let ServerLine::Ok(value) = parse_answer(&line).unwrap() else {
        panic!("{line}")
    };
    assert_eq!(serde_json::from_value::<RunInfo>(value).unwrap(), run);

    let e = ApiError::new(ErrorCode::JobRunning, "job \"x\" is running");
    let line = protocol::encode_error(&e);
    assert_eq!(
        line,
        r#"{"v":1,"ok":false,"error":{"code":"job_running","message":"job \"x\" is running"}}"#
    );
    assert_eq!(parse_answer(&line).unwrap(), ServerLine::Err(e));

    for bad in [
        "",
        "{}",
        r#"{"v":2,"ok":true}"#,
        r#"{"v":1}"#,
        r#"{"v":1,"event":"x"}"#,
    ] {
        assert!(parse_answer(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn control_oversized_lines_are_cut_off() {
    use protocol::{read_line, Line};
    let mut long = vec![b'a'; protocol::MAX_REQUEST_LINE + 1];
    long.push(b'\n');
    let mut reader = &long[..];
    let got = read_line(&mut reader, protocol::MAX_REQUEST_LINE)
        .await
        .unwrap();
    assert_eq!(got, Line::TooLong);

    let mut exact = vec![b'b'; protocol::MAX_REQUEST_LINE];
    exact.extend_from_slice(b"\nnext\nlast");
    let mut reader = &exact[..];
    let max = protocol::MAX_REQUEST_LINE;
    assert_eq!(
        read_line(&mut reader, max).await.unwrap(),
        Line::Text(vec![b'b'; max])
    );
    assert_eq!(
        read_line(&mut reader, max).await.unwrap(),
        Line::Text(b"next".to_vec())
    );
    assert_eq!(
        read_line(&mut reader, max).await.unwrap(),
        Line::Text(b"last".to_vec())
    );
    assert_eq!(read_line(&mut reader, max).await.unwrap(), Line::Eof);
}
