//! `mongo-backupd generate`: the man page and the shell completions,
//! written from the clap definitions when the Debian package is built
//! (packaging/build-deb.sh), so they cannot fall behind the command line.
//! Hidden from `--help`: it is for packagers, not operators.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

use super::commands::fail;
use super::{exit, Cli, DEFAULT_CONFIG};

const BIN: &str = "mongo-backupd";

#[derive(Subcommand, Debug)]
pub enum Generate {
    /// Write the manual page mongo-backupd.1 into DIR.
    Man {
        /// The directory to write into (created if missing).
        dir: PathBuf,
    },
    /// Write bash, zsh and fish completions into DIR.
    Completions {
        /// The directory to write into (created if missing).
        dir: PathBuf,
    },
}

/// Writes the files and prints their paths, one a line, for the build
/// script's log.
pub fn run(what: &Generate) -> u8 {
    let written = match what {
        Generate::Man { dir } => write_man(dir).map(|p| vec![p]),
        Generate::Completions { dir } => write_completions(dir),
    };
    match written {
        Ok(paths) => {
            for path in paths {
                println!("{}", path.display());
            }
            0
        }
        Err(e) => fail(format!("{e:#}"), exit::IOERR),
    }
}

fn write_man(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{BIN}.1"));
    let page = man_page().context("cannot render the man page")?;
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

fn write_completions(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = visible_command();
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| {
            clap_complete::generate_to(shell, &mut cmd, BIN, dir).with_context(|| {
                format!(
                    "cannot write the {shell} completions into {}",
                    dir.display()
                )
            })
        })
        .collect()
}

/// The command line as operators see it. The completion generators offer
/// hidden subcommands too, and clap cannot remove one, so the top level is
/// rebuilt from the visible ones (it has no arguments of its own besides
/// --help and --version, which clap adds again).
fn visible_command() -> clap::Command {
    let full = Cli::command();
    let visible = full
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect::<Vec<_>>();
    let mut cmd = clap::Command::new(BIN)
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(full.is_subcommand_required_set())
        .subcommands(visible);
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    cmd
}

/// Defines the apostrophe string that roff text uses (`\*(Aq`); every
/// clap_mangen render starts with it, the page needs it once.
const APOSTROPHE_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// The whole manual page. clap_mangen renders subcommands only as a list
/// of references to one page each; operators read `man mongo-backupd`, so
/// here every command gets a subsection of this one page, with its
/// synopsis, description and options rendered by clap_mangen.
fn man_page() -> io::Result<String> {
    let mut cmd = Cli::command()
        .subcommand_value_name("COMMAND")
        .disable_help_subcommand(true);
    cmd.build();
    // A date must be given: clap_mangen writes an empty one as nothing,
    // and roff then reads the next field (the version) as the date.
    let man = Man::new(cmd.clone()).date(page_date());

    let mut page = String::new();
    page.push_str(&rendered(|w| man.render_title(w))?);
    page.push_str(&rendered(|w| man.render_name_section(w))?);
    page.push_str(&rendered(|w| man.render_synopsis_section(w))?);
    page.push_str(&rendered(|w| man.render_description_section(w))?);
    page.push_str(&introduction().render());
    page.push_str(&rendered(|w| man.render_options_section(w))?);

    let mut commands = Roff::new();
    commands.control("SH", ["COMMANDS"]);
    commands.text([roman(
        "Each command with its options; -h or --help after a command prints them too.",
    )]);
    page.push_str(&commands.render());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_command(&mut page, sub)?;
    }

    page.push_str(&trailer().render());
    let body: String = page
        .lines()
        .filter(|l| !APOSTROPHE_PREAMBLE.lines().any(|p| p == *l))
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(format!("{APOSTROPHE_PREAMBLE}{body}"))
}

/// The page's date: SOURCE_DATE_EPOCH when set, as in reproducible builds
/// (packaging/build-deb.sh sets it from the newest changelog entry), else
/// today.
fn page_date() -> String {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .unwrap_or_else(chrono::Utc::now)
        .format("%Y-%m-%d")
        .to_string()
}

/// One command as a subsection: synopsis, description, options; then its
/// own subcommands, if a later version adds any.
fn render_command(page: &mut String, cmd: &clap::Command) -> io::Result<()> {
    let title = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let mut heading = Roff::new();
    heading.control("SS", [title]);
    page.push_str(&heading.render());

    let man = Man::new(cmd.clone());
    page.push_str(&demoted(&rendered(|w| man.render_synopsis_section(w))?));
    page.push_str(".PP\n");
    page.push_str(&demoted(&rendered(|w| man.render_description_section(w))?));
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        page.push_str(&demoted(&rendered(|w| man.render_options_section(w))?));
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_command(page, sub)?;
    }
    Ok(())
}

/// What one of clap_mangen's `render_*` writes, as text.
fn rendered(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> io::Result<String> {
    let mut buf = Vec::new();
    render(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A section rendered by clap_mangen, fit to go inside a command's
/// subsection, where a `.SH` would end it: the first heading dropped (the
/// subsection says what follows), further ones (from `help_heading`) as
/// bold paragraphs.
fn demoted(section: &str) -> String {
    let mut out = String::new();
    let mut first = true;
    for line in section.lines() {
        if let Some(heading) = line.strip_prefix(".SH ") {
            if !first {
                out.push_str(&format!(".PP\n.B {heading}\n"));
            }
            first = false;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Continues the DESCRIPTION section: what the program is for and where
/// its configuration is documented.
fn introduction() -> Roff {
    let mut r = Roff::new();
    r.control("PP", []);
    r.text([
        bold(BIN),
        roman(
            " takes full and incremental (oplog) backups of MongoDB deployments on the \
             schedules of its configuration file, keeps them as long as the retention \
             policies say, and alerts when backups fail or stop happening. It runs as \
             the systemd service ",
        ),
        bold("mongo-backupd.service"),
        roman(
            " (see FILES). The commands below also take, list, verify, prune and restore \
             backups by hand, and query or steer the running daemon.",
        ),
    ]);
    r.control("PP", []);
    r.text([
        roman("The configuration is read from "),
        italic(DEFAULT_CONFIG),
        roman(" unless "),
        bold("--config"),
        roman(" or "),
        bold("MONGO_BACKUPD_CONFIG"),
        roman(
            " names another file. Every setting is described by the comments of the \
             example configuration, which the package installs as that file; ",
        ),
        bold("mongo-backupd check-config"),
        roman(" lists every mistake with file, line and column."),
    ]);
    r
}

/// FILES, ENVIRONMENT, EXIT STATUS and SEE ALSO.
fn trailer() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["FILES"]);
    for (path, what) in [
        (
            DEFAULT_CONFIG,
            "The configuration (mode 0640, group mongo-backupd: it may hold a connection string with a password).",
        ),
        (
            "/var/lib/mongo-backupd",
            "The daemon's state (daemon.state_dir): run history, last runs, paused jobs.",
        ),
        (
            "/var/log/mongo-backupd",
            "Log files, when daemon.log_file is set; otherwise the daemon logs to the journal.",
        ),
        (
            "/var/backups/mongo-backupd",
            "The backups of the example configuration's storage location. Purging the package keeps them.",
        ),
        (
            "/run/mongo-backupd/control.sock",
            "The control socket that status, backup-now, pause and resume use.",
        ),
        (
            "/lib/systemd/system/mongo-backupd.service",
            "The systemd unit.",
        ),
    ] {
        r.control("TP", []);
        r.text([italic(path)]);
        r.text([roman(what)]);
    }

    r.control("SH", ["ENVIRONMENT"]);
    for (var, what) in [
        ("MONGO_BACKUPD_CONFIG", "The configuration file, instead of the default."),
        ("MONGO_BACKUPD_URI", "The connection string of ping and of an ad-hoc backup."),
        ("MONGO_BACKUPD_RESTORE_URI", "The deployment restore writes into."),
        ("MONGO_BACKUPD_SOCKET", "The daemon's control socket."),
        (
            "MONGO_BACKUPD_LOG",
            "The log filter (e.g. debug, or info,mongo_backupd=trace), overriding daemon.log_level; RUST_LOG is read when it is not set.",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(var)]);
        r.text([roman(what)]);
    }

    r.control("SH", ["EXIT STATUS"]);
    for (code, what) in [
        (0, "Success."),
        (exit::FAILURE, "The operation failed; the message says why."),
        (exit::USAGE, "Bad command-line usage."),
        (exit::DATAERR, "The backup is damaged (verify, restore)."),
        (exit::UNAVAILABLE, "MongoDB, the mail server or the daemon could not be reached."),
        (exit::SOFTWARE, "An internal error."),
        (exit::IOERR, "Writing failed (a full disk, permissions)."),
        (exit::TEMPFAIL, "The job is running already; try again later."),
        (exit::NOPERM, "Not allowed to talk to the daemon."),
        (
            exit::CONFIG,
            "The configuration is invalid; every mistake is listed. systemd does not restart the service on it.",
        ),
        (
            exit::INTERRUPTED,
            "Interrupted by SIGINT or SIGTERM; nothing partial is kept.",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(code.to_string())]);
        r.text([roman(what)]);
    }

    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("systemctl"),
        roman("(1), "),
        bold("journalctl"),
        roman("(1), "),
        bold("mongorestore"),
        roman("(1), and /usr/share/doc/mongo-backupd/ for the full documentation."),
    ]);
    r
}
