//! `mongo-backupd test-alert`: one mail through the configured SMTP server,
//! with each step of the conversation shown, so a sysadmin can prove the
//! alert path works before the night it is needed.

use super::commands::{fail, load_config};
use super::{exit, ConfigArg};
use crate::alert::event::Event;
use crate::alert::policy::{Mailing, Outgoing};
use crate::alert::{render, smtp};

pub async fn test_alert(arg: &ConfigArg, job: Option<&str>) -> u8 {
    let cfg = match load_config(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(email) = &cfg.alerts.email else {
        return fail(
            format!(
                "{} has no [alerts.email] section, so alerts are only logged; add one (see the example configuration) to have them mailed",
                cfg.path.display()
            ),
            exit::CONFIG,
        );
    };
    let extra_to = match job {
        None => Vec::new(),
        Some(name) => match cfg.jobs.get(name) {
            Some(j) => j.alert_to.clone(),
            None => {
                return fail(
                    format!("there is no job {name:?} in {}", cfg.path.display()),
                    exit::USAGE,
                )
            }
        },
    };
    let hostname = smtp::hostname();
    let config_path = cfg.path.display().to_string();
    let rendered = render::render(
        &Outgoing {
            event: Event::Test,
            mailing: Mailing::First,
            suppressed: Vec::new(),
        },
        &render::Context {
            prefix: &email.subject_prefix,
            hostname: &hostname,
            config_path: &config_path,
            reminder: cfg.alerts.reminder_interval,
            now: chrono::Utc::now(),
        },
    );
    let recipients: Vec<&str> = email
        .to
        .iter()
        .chain(&extra_to)
        .map(String::as_str)
        .collect();
    let login = match &email.username {
        Some(user) => format!(" as user {user:?}"),
        None => String::new(),
    };
    println!(
        "Sending a test alert via {}{login} to {}:",
        email.server_label(),
        recipients.join(", ")
    );
    let mail = smtp::Mail {
        subject: rendered.subject,
        body: rendered.body,
        extra_to,
    };
    match smtp::deliver(email, &mail).await {
        Ok(transcript) => {
            for step in transcript {
                println!("  {step}");
            }
            println!("Delivered: check the inbox of the recipients (and their spam folder).");
            0
        }
        Err(e) => fail(e, exit::UNAVAILABLE),
    }
}
