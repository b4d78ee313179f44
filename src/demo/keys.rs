//! The demo's encryption key. The demo encrypts its backups as a real
//! deployment should, so the closing point-in-time restore shows
//! decryption too, and the user leaves with an identity file to try
//! `verify --decrypt` and `restore --identity` on. The key is either a
//! new pair written into the demo's directory, or the user's own identity
//! file (`--identity`), whose public keys become the recipients.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};

use super::DemoError;
use crate::storage::crypt::{self, Identities};

/// The identity file the demo writes, named as in the README's key
/// management advice.
pub const KEY_FILE: &str = "backup-key.txt";

/// What the demo encrypts to and decrypts with.
pub struct DemoKey {
    /// The identity file that decrypts the demo's backups (absolute, so the
    /// commands the demo suggests work from any directory).
    pub file: PathBuf,
    /// Whether the demo wrote it into its directory (else the user gave it).
    pub generated: bool,
    /// The public keys (`age1...`) the backups are encrypted to.
    pub recipients: Vec<String>,
    pub identities: Arc<Identities>,
}

/// Loads `given`, or writes a new key pair into `dir`. Either way the file
/// is read back with the restore's own loader, so a key the restore would
/// refuse stops the demo before anything is backed up.
pub fn prepare(dir: &Path, given: Option<&Path>) -> Result<DemoKey, DemoError> {
    let (file, generated) = match given {
        Some(path) => (
            std::path::absolute(path).unwrap_or(path.to_path_buf()),
            false,
        ),
        None => (write_new(dir)?, true),
    };
    let identities = Identities::from_file(&file)?;
    Ok(DemoKey {
        recipients: identities.recipients(),
        file,
        generated,
        identities: Arc::new(identities),
    })
}

/// A new identity file in `dir`, in the format `age-keygen` writes.
fn write_new(dir: &Path) -> Result<PathBuf, DemoError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(KEY_FILE);
    let failed = |e: std::io::Error| DemoError::Dir {
        path: path.clone(),
        why: e.to_string(),
    };
    let (secret, public) = crypt::generate();
    // Created with mode 0600, not chmod-ed after writing: the secret key is
    // never readable by anyone else, not even for a moment.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(failed)?;
    write!(
        file,
        "# created: {}\n# public key: {public}\n{secret}\n",
        Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
    )
    .and_then(|()| file.sync_all())
    .map_err(failed)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_new_key_is_private_and_a_given_one_is_used_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let key = prepare(dir.path(), None).unwrap();
        assert!(key.generated);
        assert_eq!(key.file, dir.path().join(KEY_FILE));
        let mode = std::fs::metadata(&key.file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(key.recipients.len(), 1);
        assert!(key.recipients[0].starts_with("age1"));
        let text = std::fs::read_to_string(&key.file).unwrap();
        assert!(text.contains(&format!("# public key: {}", key.recipients[0])));

        // The user's own file: the same public key is derived from it.
        let other = tempfile::tempdir().unwrap();
        let given = prepare(other.path(), Some(&key.file)).unwrap();
        assert!(!given.generated);
        assert_eq!(given.recipients, key.recipients);
        assert!(!other.path().join(KEY_FILE).exists());
        assert!(matches!(
            prepare(other.path(), Some(&other.path().join("missing.txt"))),
            Err(DemoError::Key(_))
        ));
    }
}
