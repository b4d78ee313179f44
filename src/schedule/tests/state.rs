//! `schedule-state.json`: round trip, missing and corrupt files, atomic
//! replacement.

use std::collections::BTreeMap;
use std::fs;

use chrono::{DateTime, TimeDelta, Utc};

use super::utc;
use crate::schedule::{load_state, save_state, ScheduleError, STATE_FILE};

fn sample() -> BTreeMap<String, DateTime<Utc>> {
    BTreeMap::from([
        ("prod-full".to_string(), utc(2025, 6, 1, 2, 0, 0)),
        (
            "prod-incremental".to_string(),
            utc(2025, 6, 1, 13, 0, 0) + TimeDelta::milliseconds(250),
        ),
    ])
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trip() {
    let dir = tempfile::tempdir().unwrap();
    save_state(dir.path(), &sample()).unwrap();
    assert_eq!(load_state(dir.path()).unwrap(), sample());
    let text = fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
    assert!(text.contains("\"version\": 1"), "{text}");
    assert!(text.contains("\"prod-full\""), "{text}");
    assert!(text.contains("2025-06-01T02:00:00Z"), "{text}");
    assert!(text.ends_with("}\n"));

    // Saving replaces the whole state.
    let fewer = BTreeMap::from([("prod-full".to_string(), utc(2025, 6, 2, 2, 0, 0))]);
    save_state(dir.path(), &fewer).unwrap();
    assert_eq!(load_state(dir.path()).unwrap(), fewer);
    save_state(dir.path(), &BTreeMap::new()).unwrap();
    assert_eq!(load_state(dir.path()).unwrap(), BTreeMap::new());
}

#[test]
fn a_missing_file_or_directory_is_an_empty_state() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(load_state(dir.path()).unwrap(), BTreeMap::new());
    assert_eq!(
        load_state(&dir.path().join("not-yet")).unwrap(),
        BTreeMap::new()
    );
}

#[test]
fn save_creates_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("var/lib/mongo-backupd");
    save_state(&state_dir, &sample()).unwrap();
    assert_eq!(load_state(&state_dir).unwrap(), sample());
}

#[test]
fn writes_leave_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    // A stray temporary file from a crash mid-write is reused and renamed.
    fs::write(
        dir.path().join(".schedule-state.json.tmp"),
        "{\"version\": 1, \"jo",
    )
    .unwrap();
    for _ in 0..3 {
        save_state(dir.path(), &sample()).unwrap();
        assert_eq!(names_in(dir.path()), vec![STATE_FILE.to_string()]);
    }
}

#[test]
fn unknown_jobs_and_fields_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(STATE_FILE),
        r#"{"version": 1, "written_by": "a later version",
            "jobs": {
              "removed-job": {"last_fire": "2024-01-01T00:00:00Z", "streak": 3},
              "prod-full": {"last_fire": "2025-06-01T02:00:00+02:00"},
              "never-fired": {}
            }}"#,
    )
    .unwrap();
    assert_eq!(
        load_state(dir.path()).unwrap(),
        BTreeMap::from([
            ("prod-full".to_string(), utc(2025, 6, 1, 0, 0, 0)),
            ("removed-job".to_string(), utc(2024, 1, 1, 0, 0, 0)),
        ])
    );
}

#[test]
fn corrupt_files_are_errors_that_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(STATE_FILE);
    for (content, reason) in [
        ("", "it is truncated"),
        (
            "{\"version\": 1, \"jobs\": {\"prod-full\": {\"last_f",
            "it is truncated",
        ),
        ("\u{0}\u{0}\u{0}garbage", "not valid JSON"),
        ("[1, 2, 3]", "not valid JSON"),
        ("{\"jobs\": {}}", "not valid JSON"),
        (
            "{\"version\": 1, \"jobs\": {\"a\": {\"last_fire\": \"yesterday\"}}}",
            "not valid JSON",
        ),
        (
            "{\"version\": 2, \"jobs\": {}}",
            "written by a newer mongo-backupd",
        ),
    ] {
        fs::write(&path, content).unwrap();
        let err = load_state(dir.path()).unwrap_err();
        assert!(matches!(err, ScheduleError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(reason), "{content:?}: {message}");
        assert!(message.contains("move it aside or delete it"), "{message}");
    }
}

#[test]
fn unreadable_and_unwritable_state_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: reading it fails (EISDIR), and
    // so does renaming a file over it.
    fs::create_dir(dir.path().join(STATE_FILE)).unwrap();
    let err = load_state(dir.path()).unwrap_err();
    assert!(matches!(err, ScheduleError::Read { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("cannot read the schedule state "));

    let err = save_state(dir.path(), &sample()).unwrap_err();
    assert!(
        matches!(err, ScheduleError::Write { op: "replace", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(STATE_FILE), "{err}");
    // The failed write cleaned up after itself.
    assert_eq!(names_in(dir.path()), vec![STATE_FILE.to_string()]);

    // A state directory that is a file.
    let file = dir.path().join("plain-file");
    fs::write(&file, "").unwrap();
    let err = save_state(&file, &sample()).unwrap_err();
    assert!(matches!(err, ScheduleError::Write { .. }), "{err:?}");
}
