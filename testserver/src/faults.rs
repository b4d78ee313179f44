//! Fault injection: MongoDB's own `failCommand` fail point, plus faults only
//! a test harness can cause (refusing connections, stopping the server).
//!
//! `failCommand` is configured exactly as on a real `mongod` started with
//! `enableTestCommands=1` (`configureFailPoint` with `mode` and `data`), so a
//! fault test written against this server also runs against a real replica
//! set. The semantics follow the drivers' test documentation: block first,
//! then close the connection or answer with the error, otherwise run the
//! command normally.

use std::time::Duration;

use bson::{doc, Bson, Document};

use crate::error::{CmdResult, CommandError};

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    AlwaysOn,
    /// Fire this many more times, then turn off.
    Times(u64),
    /// Let this many matching commands through, then fire every time.
    Skip(u64),
}

/// One configured fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FailPoint {
    pub mode: Mode,
    /// Command names it applies to.
    pub commands: Vec<String>,
    pub error_code: Option<i32>,
    pub error_labels: Vec<String>,
    pub close_connection: bool,
    pub block: Option<Duration>,
    /// Only commands from connections whose handshake named this appName.
    pub app_name: Option<String>,
    /// Stop the whole server when it fires (harness-only; no mongod
    /// equivalent), to test a server dying in the middle of an operation.
    pub shutdown_server: bool,
}

impl FailPoint {
    pub fn new(mode: Mode, commands: &[&str]) -> FailPoint {
        FailPoint {
            mode,
            commands: commands.iter().map(|c| c.to_string()).collect(),
            error_code: None,
            error_labels: Vec::new(),
            close_connection: false,
            block: None,
            app_name: None,
            shutdown_server: false,
        }
    }

    /// Parses a `configureFailPoint: "failCommand"` command.
    pub fn from_command(cmd: &Document) -> CmdResult<Option<FailPoint>> {
        let mode = match cmd.get("mode") {
            Some(Bson::String(s)) if s == "off" => return Ok(None),
            Some(Bson::String(s)) if s == "alwaysOn" => Mode::AlwaysOn,
            Some(Bson::Document(m)) => {
                if let Some(n) = m.get("times").and_then(as_u64) {
                    Mode::Times(n)
                } else if let Some(n) = m.get("skip").and_then(as_u64) {
                    Mode::Skip(n)
                } else {
                    return Err(CommandError::bad_value(
                        "mode must be 'off', 'alwaysOn', {times: n} or {skip: n}",
                    ));
                }
            }
            _ => {
                return Err(CommandError::bad_value(
                    "mode must be 'off', 'alwaysOn', {times: n} or {skip: n}",
                ))
            }
        };
        let data = cmd.get_document("data").cloned().unwrap_or_default();
        let commands = data
            .get_array("failCommands")
            .map_err(|_| {
                CommandError::bad_value(
                    "data.failCommands is required and must be an array of command names",
                )
            })?
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect();
        let block = if data.get_bool("blockConnection").unwrap_or(false) {
            let ms = data.get("blockTimeMS").and_then(as_u64).ok_or_else(|| {
                CommandError::bad_value("blockTimeMS is required when blockConnection is true")
            })?;
            Some(Duration::from_millis(ms))
        } else {
            None
        };
        Ok(Some(FailPoint {
            mode,
            commands,
            error_code: data.get("errorCode").and_then(as_u64).map(|c| c as i32),
            error_labels: data
                .get_array("errorLabels")
                .map(|a| {
                    a.iter()
                        .filter_map(|l| l.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            close_connection: data.get_bool("closeConnection").unwrap_or(false),
            block,
            app_name: data.get_str("appName").ok().map(str::to_string),
            shutdown_server: false,
        }))
    }
}

fn as_u64(v: &Bson) -> Option<u64> {
    match v {
        Bson::Int32(i) if *i >= 0 => Some(*i as u64),
        Bson::Int64(i) if *i >= 0 => Some(*i as u64),
        Bson::Double(d) if *d >= 0.0 && d.fract() == 0.0 => Some(*d as u64),
        _ => None,
    }
}

/// What a fired fail point makes the server do with one command.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Action {
    pub block: Option<Duration>,
    pub close_connection: bool,
    pub shutdown_server: bool,
    pub error: Option<Document>,
}

#[derive(Debug, Default)]
pub struct Faults {
    points: Vec<FailPoint>,
    /// How often the `failCommand` fail point has fired, the `count` that
    /// `configureFailPoint` answers with.
    pub times_entered: i64,
    pub refuse_connections: bool,
}

impl Faults {
    /// `configureFailPoint` replaces the failCommand configuration.
    pub fn configure(&mut self, point: Option<FailPoint>) -> i64 {
        let previous = self.times_entered;
        self.points.clear();
        self.times_entered = 0;
        if let Some(p) = point {
            self.points.push(p);
        }
        previous
    }

    /// Adds a fault beside the existing ones (harness API).
    pub fn add(&mut self, point: FailPoint) {
        self.points.push(point);
    }

    pub fn clear(&mut self) {
        self.points.clear();
        self.refuse_connections = false;
    }

    /// Whether a fault fires for this command, consuming one use of it.
    pub fn check(&mut self, command: &str, app_name: Option<&str>) -> Option<Action> {
        let idx = self.points.iter().position(|p| {
            p.commands.iter().any(|c| c == command)
                && match &p.app_name {
                    Some(want) => Some(want.as_str()) == app_name,
                    None => true,
                }
        })?;
        let point = &mut self.points[idx];
        match &mut point.mode {
            Mode::AlwaysOn => {}
            Mode::Skip(n) if *n > 0 => {
                *n -= 1;
                return None;
            }
            Mode::Skip(_) => {}
            Mode::Times(n) => {
                *n = n.saturating_sub(1);
            }
        }
        let action = Action {
            block: point.block,
            close_connection: point.close_connection,
            shutdown_server: point.shutdown_server,
            error: point.error_code.map(|code| {
                let mut e = CommandError::new(code, "Failing command via 'failCommand' failpoint")
                    .to_reply();
                if !point.error_labels.is_empty() {
                    e.insert("errorLabels", point.error_labels.clone());
                }
                e
            }),
        };
        if point.mode == Mode::Times(0) {
            self.points.remove(idx);
        }
        self.times_entered += 1;
        Some(action)
    }
}

/// The reply to a fired fault that only blocks: nothing to send instead.
pub fn ok_count(count: i64) -> Document {
    doc! { "count": count, "ok": 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_mode_fires_n_times_then_turns_off() {
        let mut f = Faults::default();
        let cmd = doc! {"configureFailPoint": "failCommand", "mode": {"times": 2}, "data": {"failCommands": ["find"], "errorCode": 91}};
        f.configure(FailPoint::from_command(&cmd).unwrap());
        assert!(f.check("insert", None).is_none());
        let a = f.check("find", None).unwrap();
        assert_eq!(
            a.error.unwrap().get_str("codeName").unwrap(),
            "ShutdownInProgress"
        );
        assert!(f.check("find", None).is_some());
        assert!(f.check("find", None).is_none());
        assert_eq!(f.times_entered, 2);
    }

    #[test]
    fn skip_mode_and_app_name_filter() {
        let mut f = Faults::default();
        let cmd = doc! {"configureFailPoint": "failCommand", "mode": {"skip": 1}, "data": {"failCommands": ["ping"], "closeConnection": true, "appName": "x"}};
        f.configure(FailPoint::from_command(&cmd).unwrap());
        assert!(f.check("ping", Some("y")).is_none());
        assert!(f.check("ping", Some("x")).is_none());
        assert!(f.check("ping", Some("x")).unwrap().close_connection);
        let off = doc! {"configureFailPoint": "failCommand", "mode": "off"};
        assert_eq!(f.configure(FailPoint::from_command(&off).unwrap()), 1);
        assert!(f.check("ping", Some("x")).is_none());
    }

    #[test]
    fn bad_configuration_is_rejected() {
        let cmd = doc! {"configureFailPoint": "failCommand", "mode": {"times": 1}, "data": {"blockConnection": true, "failCommands": ["find"]}};
        assert_eq!(FailPoint::from_command(&cmd).unwrap_err().code, 2);
        let cmd = doc! {"configureFailPoint": "failCommand", "mode": "sometimes"};
        assert!(FailPoint::from_command(&cmd).is_err());
    }
}
