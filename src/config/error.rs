//! Configuration errors: one [`ConfigError`] per problem, all of them
//! collected in [`ConfigErrors`], each pointing at `file:line:column`.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in the configuration file.
///
/// `line` and `column` are 1-based (columns count characters, like editors
/// and toml_edit do). Both are 0 for problems with the file as a whole (it
/// cannot be read), and `key_path` is empty when no key is involved (TOML
/// syntax errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted path of the key concerned, e.g. `jobs.prod-full.schedule`.
    pub key_path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigError {
    pub(crate) fn whole_file(file: &Path, message: String, hint: Option<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            key_path: String::new(),
            message,
            hint,
        }
    }

    /// `file:line:column: key.path: message (hint: ...)`, the shape compilers
    /// use, so editors and `grep` can jump to the spot.
    fn render(&self) -> String {
        let mut out = self.file.display().to_string();
        if self.line > 0 {
            out.push_str(&format!(":{}:{}", self.line, self.column));
        }
        out.push_str(": ");
        if !self.key_path.is_empty() {
            out.push_str(&self.key_path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        if let Some(hint) = &self.hint {
            out.push_str(&format!(" (hint: {hint})"));
        }
        out
    }
}

/// Every problem found in one configuration file, in file order. Never empty
/// when returned by [`load`](super::load) or [`parse`](super::parse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line per error, no trailing newline.
    fn render(&self) -> String {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        lines.join("\n")
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Where a value came from, kept by values that are checked again at use
/// time (a source's URI) so those late errors point into the file too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub key_path: String,
}

impl Origin {
    pub fn error(&self, message: String, hint: Option<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            key_path: self.key_path.clone(),
            message,
            hint,
        }
    }
}

/// Collects errors while the whole file is checked, turning byte spans from
/// toml_edit into lines and columns.
pub(crate) struct Sink<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    errors: Vec<ConfigError>,
}

impl<'a> Sink<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Sink {
            file,
            text,
            errors: Vec::new(),
        }
    }

    pub fn origin(&self, span: Option<Range<usize>>, key_path: &str) -> Origin {
        // A missing span can only come from a table toml_edit synthesised;
        // the start of the file is the least surprising place to point then.
        let offset = span.map_or(0, |s| s.start);
        let (line, column) = line_column(self.text, offset);
        Origin {
            file: self.file.to_path_buf(),
            line,
            column,
            key_path: key_path.to_string(),
        }
    }

    pub fn error(
        &mut self,
        span: Option<Range<usize>>,
        key_path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let err = self.origin(span, key_path).error(message.into(), hint);
        self.errors.push(err);
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The errors in file order. Checks run table by table and cross-checks
    /// run last, so sorting is what makes the report read top to bottom; the
    /// sort is stable, keeping the check order for errors at one spot.
    pub fn finish(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
/// Offsets past the end or inside a character are clamped, so a bad span can
/// never panic.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    if offset >= text.len() {
        // The end of the file, as toml_edit reports it: one column past the
        // last character (after the final newline's column, not on a line
        // of its own), so syntax errors match what toml_edit prints.
        if let Some((last, _)) = text.char_indices().next_back() {
            let (line, column) = line_column(text, last);
            return (line, column + 1);
        }
    }
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Renders one key for a key path: bare when TOML allows it, quoted
/// otherwise (`jobs."bad name"`), so the path can be pasted back.
pub(crate) fn key_segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// `parent.key`, or `key` at the top level.
pub(crate) fn join_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key_segment(key)
    } else {
        format!("{parent}.{}", key_segment(key))
    }
}
