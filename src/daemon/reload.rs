//! Reloading the configuration (SIGHUP): a broken file is rejected and
//! mailed, the running configuration kept; a good one is applied without
//! touching running backups, and settings that cannot change live are named.

use chrono::Utc;

use super::{timing_of, Daemon, ScheduledJob};
use crate::alert::Event;
use crate::config;
use crate::schedule::JobState;

impl Daemon {
    /// Applies a changed configuration without touching running backups;
    /// a broken file leaves everything as it was.
    pub(super) fn reload(&mut self) {
        self.notifier.reloading();
        let path = self.config.path.clone();
        let new = match config::load(&path) {
            Ok(c) => c,
            Err(errors) => {
                self.alerts.event(Event::ReloadRejected {
                    path: path.clone(),
                    errors: errors.iter().map(ToString::to_string).collect(),
                });
                for e in &errors.0 {
                    tracing::error!("{e}");
                }
                tracing::error!(
                    "The reloaded configuration {} has {} errors (listed above); still running the previous configuration. Fix the file and reload again.",
                    path.display(),
                    errors.0.len()
                );
                self.notifier
                    .ready("configuration reload rejected; previous configuration active");
                return;
            }
        };
        let now = Utc::now();
        let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for name in self.jobs.keys() {
            if !new.jobs.contains_key(name) {
                removed.push(name.clone());
            }
        }
        for name in &removed {
            self.jobs.remove(name);
        }
        for (name, job) in &new.jobs {
            match self.jobs.get_mut(name) {
                Some(sj) if sj.job == *job => {}
                Some(sj) => {
                    let timing = timing_of(job).unwrap_or_else(|why| {
                        tracing::warn!(job = %name, "{why}");
                        None
                    });
                    let schedule_changed =
                        sj.job.schedule != job.schedule || sj.job.timezone != job.timezone;
                    sj.job = job.clone();
                    sj.timing = timing;
                    if schedule_changed {
                        // The new schedule starts now: its past fires are not due.
                        sj.state.last_fire = Some(now);
                    }
                    changed.push(name.clone());
                }
                None => {
                    let timing = timing_of(job).unwrap_or_else(|why| {
                        tracing::warn!(job = %name, "{why}");
                        None
                    });
                    let state = JobState::new(Some(now));
                    self.jobs.insert(
                        name.clone(),
                        ScheduledJob {
                            job: job.clone(),
                            timing,
                            state,
                        },
                    );
                    added.push(name.clone());
                }
            }
        }
        let old = &self.config.daemon;
        let mut needs_restart = Vec::new();
        if old.state_dir != new.daemon.state_dir {
            needs_restart.push("daemon.state_dir");
        }
        if old.log_file != new.daemon.log_file || old.log_rotation != new.daemon.log_rotation {
            needs_restart.push("daemon.log_file/log_rotation");
        }
        if old.log_level != new.daemon.log_level {
            needs_restart.push("daemon.log_level");
        }
        if old.max_concurrent_jobs != new.daemon.max_concurrent_jobs {
            needs_restart.push("daemon.max_concurrent_jobs");
        }
        if old.control_socket != new.daemon.control_socket
            || old.control_group != new.daemon.control_group
        {
            needs_restart.push("daemon.control_socket/control_group");
        }
        if self.config.http != new.http {
            needs_restart.push("[http]");
        }
        let keep_daemon = old.clone();
        let keep_http = self.config.http.clone();
        self.config = new;
        self.config.http = keep_http;
        // Settings that cannot change live keep their running values.
        self.config.daemon.state_dir = keep_daemon.state_dir;
        self.config.daemon.log_file = keep_daemon.log_file;
        self.config.daemon.log_rotation = keep_daemon.log_rotation;
        self.config.daemon.log_level = keep_daemon.log_level;
        self.config.daemon.max_concurrent_jobs = keep_daemon.max_concurrent_jobs;
        self.config.daemon.control_socket = keep_daemon.control_socket;
        self.config.daemon.control_group = keep_daemon.control_group;
        let list = |v: &Vec<String>| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        tracing::info!(
            "Reloaded {}: jobs added: {}; removed: {}; changed: {}. Running backups were not interrupted.",
            path.display(),
            list(&added),
            list(&removed),
            list(&changed)
        );
        if !needs_restart.is_empty() {
            tracing::warn!(
                "These settings changed but only take effect after a restart (systemctl restart mongo-backupd): {}.",
                needs_restart.join(", ")
            );
        }
        self.config_loaded_at = now;
        self.save_state();
        self.alerts.reloaded(&self.config);
        let fresh: Vec<String> = added.iter().chain(&changed).cloned().collect();
        self.sync_health(now, &fresh, None);
        let scheduled = self.jobs.values().filter(|j| j.timing.is_some()).count();
        self.notifier.ready(&format!("{scheduled} jobs scheduled"));
    }
}
