//! The man page and the shell completions are generated from the clap
//! definitions (`mongo-backupd generate`, run when the Debian package is
//! built). The page must document every command and every option, each in
//! its command's own subsection, so it cannot fall behind the command line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::process::Command;

use clap::CommandFactory;
use mongo_backupd::cli::Cli;

const BIN: &str = env!("CARGO_BIN_EXE_mongo-backupd");

fn generate(what: &str, dir: &Path) {
    let out = Command::new(BIN)
        .args(["generate", what])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "generate {what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The page's roff source with the escapes that matter here undone: `\-`
/// is a dash, `\fB`/`\fI`/`\fR` only switch fonts.
fn plain(roff: &str) -> String {
    roff.replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
}

/// The text of the subsection headed `.SS "TITLE"`, up to the next heading.
fn subsection<'a>(page: &'a str, title: &str) -> Option<&'a str> {
    let heading = format!(".SS \"{title}\"\n");
    let start = page.find(&heading)? + heading.len();
    let rest = &page[start..];
    let end = rest
        .find("\n.SS ")
        .or_else(|| rest.find("\n.SH "))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Every visible subcommand (at any depth) has a subsection naming each of
/// its visible options and positional arguments.
fn check_commands(page: &str, cmd: &clap::Command, path: &str, checked: &mut Vec<String>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let title = format!("{path} {}", sub.get_name());
        let text = subsection(page, &title)
            .unwrap_or_else(|| panic!("the man page has no section for `{title}`"));
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                assert!(
                    text.contains(&format!("--{long}")),
                    "the man page's section for `{title}` does not document --{long}"
                );
            } else if arg.is_positional() {
                let name = arg
                    .get_value_names()
                    .and_then(|v| v.first().map(|n| n.to_string()))
                    .unwrap_or_else(|| arg.get_id().to_string());
                assert!(
                    text.contains(&name),
                    "the man page's section for `{title}` does not document <{name}>"
                );
            }
        }
        checked.push(title.clone());
        check_commands(page, sub, &title, checked);
    }
}

#[test]
fn man_page_documents_every_command_and_option() {
    let dir = tempfile::tempdir().unwrap();
    generate("man", dir.path());
    let page = plain(&std::fs::read_to_string(dir.path().join("mongo-backupd.1")).unwrap());
    assert!(page.contains(".TH mongo-backupd 1 "), "no title: {page}");

    let cli = Cli::command();
    let mut checked = Vec::new();
    check_commands(&page, &cli, "mongo-backupd", &mut checked);
    // Guards the walk itself: the CLI has well over a dozen commands.
    assert!(checked.len() >= 15, "only {checked:?} were checked");
    for expected in ["mongo-backupd check-config", "mongo-backupd restore"] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} not checked"
        );
    }

    // The hidden packaging command is not an operator's business.
    assert!(!page.contains("mongo-backupd generate"));
    for section in ["FILES", "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"] {
        assert!(
            page.contains(&format!("\n.SH {section}\n"))
                || page.contains(&format!("\n.SH \"{section}\"\n")),
            "no {section} section"
        );
    }
}

#[test]
fn completions_are_written_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    generate("completions", dir.path());
    for file in ["mongo-backupd.bash", "_mongo-backupd", "mongo-backupd.fish"] {
        let text = std::fs::read_to_string(dir.path().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(text.contains("check-config"), "{file} lacks check-config");
        assert!(text.contains("--dry-run"), "{file} lacks --dry-run");
        assert!(
            !text.contains("generate"),
            "{file} offers the hidden generate"
        );
    }
}

#[test]
fn generate_is_hidden_from_help() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("check-config"), "{help}");
    assert!(!help.contains("generate"), "{help}");
}
