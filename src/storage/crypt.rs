//! Encryption at rest with age (X25519 recipients).
//!
//! Why age and why only public keys: the daemon runs unattended on a server
//! that can be compromised, so it holds nothing that can read a backup. It
//! encrypts every data file (after compression) to one or more X25519
//! recipients (`age1...`), and only whoever holds a matching secret key (an
//! identity file, typically kept offline or on the restore host) can read the
//! backups again. A compromised daemon therefore leaks future data at worst,
//! never old backups.
//!
//! The stored files are standard age files, so `age -d -i key.txt
//! orders.bson.zst.age | zstd -d` reads one by hand. age's STREAM construction
//! authenticates every 64 KiB chunk and marks the last one, so damage,
//! tampering and truncation are all detected while reading; the messages
//! below say so in words an on-call engineer can act on.
//!
//! Recipients are identified in manifests and messages by a
//! [`fingerprint`], never by the key itself, so that a manifest (which stays
//! plaintext) does not help anyone link backups to people's keys while an
//! operator can still tell which key a backup needs.

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::{ExposeSecret, SecretSlice};
use sha2::{Digest, Sha256};

/// The suffix of every encrypted file, after the compression suffix
/// (`shop/orders.bson.zst.age`), the same one the `age` tool uses.
pub const AGE_SUFFIX: &str = ".age";

/// The identity file size beyond which it cannot be a key file; refusing it
/// keeps a wrong path (a backup, a log) from being read into memory whole.
const MAX_IDENTITY_FILE_SIZE: u64 = 1024 * 1024;

/// What can go wrong with keys, encryption and decryption. Every message
/// names the key (by position or fingerprint, never its secret) or the file
/// concerned and says what to do, because these end up in alert mails and in
/// the terminal of someone restoring under pressure.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    #[error(
        "encryption is enabled but no recipients are configured: add at least one age \
         public key (`age1...`, printed by `age-keygen`) to the job's recipients"
    )]
    NoRecipients,

    #[error(
        "recipient #{index} is an SSH public key: mongo-backupd only encrypts to age X25519 \
         recipients (`age1...`); create a key pair with `age-keygen -o key.txt`, keep \
         key.txt safe and configure the public key it prints"
    )]
    SshRecipient { index: usize },

    #[error(
        "recipient #{index} is an age SECRET key (`AGE-SECRET-KEY-1...`), not a public \
         one (it is not repeated here): configure the public key instead (`age-keygen -y \
         KEYFILE` prints it), remove the secret key from the configuration, and consider \
         it exposed to everyone who can read that configuration"
    )]
    SecretKeyAsRecipient { index: usize },

    #[error(
        "recipient #{index} ({recipient}) is an age plugin or post-quantum recipient, which \
         mongo-backupd does not support (the daemon cannot run plugins unattended): use an \
         X25519 recipient (`age1` followed by 58 characters, from `age-keygen`)"
    )]
    UnsupportedRecipient { index: usize, recipient: String },

    #[error(
        "recipient #{index} {shown}is not a valid age recipient ({reason}): an age X25519 \
         recipient is `age1` followed by 58 characters, as printed by `age-keygen`; check \
         for a typo or an incomplete copy"
    )]
    InvalidRecipient {
        index: usize,
        /// The value in quotes and a space when it is safe to repeat (it
        /// looks like a public key), empty otherwise.
        shown: String,
        reason: &'static str,
    },

    #[error(
        "the identity file {} does not exist: give the path of the file holding the \
         secret key (`AGE-SECRET-KEY-1...`, as written by `age-keygen -o`) that matches \
         one of the backup's recipients",
        path.display()
    )]
    IdentityFileMissing { path: PathBuf },

    #[error(
        "could not read the identity file {}: {source}; check the path and that this \
         user may read it",
        path.display()
    )]
    IdentityFileUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "the identity file {} holds no identity: it needs at least one line \
         `AGE-SECRET-KEY-1...` (as written by `age-keygen -o`); a file with only \
         `age1...` lines holds public keys, which cannot decrypt",
        path.display()
    )]
    IdentityFileEmpty { path: PathBuf },

    #[error(
        "the identity file {} is not usable at line {line}: {reason} (the line is not \
         shown because it may hold a secret key)",
        path.display()
    )]
    IdentityFileMalformed {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },

    #[error("could not set up age encryption: {source}")]
    Encrypt {
        #[source]
        source: age::EncryptError,
    },

    #[error("could not {op} {what}: {source}")]
    Io {
        what: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    #[error(
        "{what} is damaged or not encrypted: {detail}; it is not a readable age file, so \
         the backup cannot be decrypted from this copy: verify the backup and restore \
         from another one"
    )]
    Damaged { what: String, detail: String },

    #[error(
        "none of the keys in the identity file {} can decrypt {what}: it holds the keys \
         {}, but {}; use the identity file with the secret key of one of the backup's \
         recipients (`age-keygen -y KEYFILE` prints the public key of a key file, and \
         its fingerprint is what mongo-backupd lists)",
        identity_file.display(),
        list(have),
        expected_text(expected)
    )]
    WrongIdentity {
        what: String,
        identity_file: PathBuf,
        /// Fingerprints of the identity file's keys.
        have: Vec<String>,
        /// Fingerprints of the recipients the manifest records (may be
        /// empty when the caller does not know them).
        expected: Vec<String>,
    },
}

fn list(fingerprints: &[String]) -> String {
    if fingerprints.is_empty() {
        "(none)".to_string()
    } else {
        fingerprints.join(", ")
    }
}

fn expected_text(expected: &[String]) -> String {
    if expected.is_empty() {
        "the backup's manifest does not say which recipients it was encrypted to".to_string()
    } else {
        format!("the backup was encrypted to {}", list(expected))
    }
}

/// The public keys a backup is encrypted to. Cheap to clone; its `Debug`
/// shows fingerprints only, so it can be logged.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<age::x25519::Recipient>,
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipients")
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

impl Recipients {
    /// Parses the configured recipients: age X25519 public keys (`age1...`),
    /// surrounding whitespace ignored, duplicates kept once. Positions in
    /// messages count from 1. Anything else is refused with a message
    /// naming what it looks like (an SSH key, a secret key, a plugin key);
    /// a secret key is never repeated in the message.
    pub fn parse(recipients: &[String]) -> Result<Recipients, CryptError> {
        let mut keys: Vec<age::x25519::Recipient> = Vec::with_capacity(recipients.len());
        for (i, raw) in recipients.iter().enumerate() {
            let key = parse_recipient(i + 1, raw.trim())?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Err(CryptError::NoRecipients);
        }
        Ok(Recipients { keys })
    }

    /// The [`fingerprint`] of every recipient, in configuration order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(fingerprint).collect()
    }
}

fn parse_recipient(index: usize, s: &str) -> Result<age::x25519::Recipient, CryptError> {
    // No lower-cased copy of `s`: it may be a secret key, and a copy would
    // outlive this function in freed memory.
    if starts_with_ci(s, "age-secret-key-") {
        return Err(CryptError::SecretKeyAsRecipient { index });
    }
    if ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"]
        .iter()
        .any(|p| starts_with_ci(s, p))
    {
        return Err(CryptError::SshRecipient { index });
    }
    if s.is_empty() {
        return Err(CryptError::InvalidRecipient {
            index,
            shown: String::new(),
            reason: "it is empty",
        });
    }
    if !starts_with_ci(s, "age1") {
        // Not repeated: something that is not a public key could be a
        // password or a private key pasted into the wrong field.
        return Err(CryptError::InvalidRecipient {
            index,
            shown: String::new(),
            reason: "it does not start with `age1` (the value is not repeated in case it \
                     is secret)",
        });
    }
    // Bech32's data alphabet has no `1`, so a second one means the
    // human-readable part is `age1<name>`: a plugin (or post-quantum) key.
    if s["age1".len()..].contains('1') {
        return Err(CryptError::UnsupportedRecipient {
            index,
            recipient: s.to_string(),
        });
    }
    s.parse::<age::x25519::Recipient>()
        .map_err(|reason| CryptError::InvalidRecipient {
            index,
            shown: format!("({s:?}) "),
            reason,
        })
}

/// Whether `s` starts with the ASCII `prefix`, ignoring ASCII case.
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// A stable, documented identifier of a recipient for manifests and
/// messages: `"sha256:"` followed by the first 16 bytes (32 lower-case hex
/// characters) of the SHA-256 of the recipient's canonical `age1...` string
/// (lower case, as `age-keygen` prints it). Anyone with the public key can
/// compute it (`printf %s age1... | sha256sum | cut -c1-32`).
pub fn fingerprint(recipient: &age::x25519::Recipient) -> String {
    let digest = Sha256::digest(recipient.to_string().as_bytes());
    format!("sha256:{}", hex::encode(&digest[..16]))
}

/// Secret keys loaded from an identity file, for restores and
/// verification with decryption. Its `Debug` shows the file and the
/// fingerprints of the matching public keys, never key material.
pub struct Identities {
    path: PathBuf,
    keys: Vec<age::x25519::Identity>,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identities")
            .field("path", &self.path)
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

impl Identities {
    /// An age identity file (lines `AGE-SECRET-KEY-1...`, `#` comments,
    /// blank lines; also what `age-keygen` writes). Errors: missing/unreadable
    /// file (path, advice), no identity in it, malformed line N (never echo
    /// the line). Warns (like ssh does with private keys) when the file is
    /// readable by group or others, but does not refuse: the operator may
    /// have reasons, and a restore must not fail over a mode bit.
    pub fn from_file(path: &Path) -> Result<Identities, CryptError> {
        let unreadable = |source| CryptError::IdentityFileUnreadable {
            path: path.to_path_buf(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CryptError::IdentityFileMissing {
                    path: path.to_path_buf(),
                })
            }
            Err(e) => return Err(unreadable(e)),
        };
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(unreadable(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is not a regular file",
            )));
        }
        if meta.len() > MAX_IDENTITY_FILE_SIZE {
            return Err(unreadable(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "it has {} bytes, far more than a key file (is it the right file?)",
                    meta.len()
                ),
            )));
        }
        warn_if_exposed(path, &meta);
        // Sized up front so that reading does not reallocate (leaving copies
        // of the keys in freed memory), and held as a secret from here on so
        // that the key text is wiped when it is dropped. The size is
        // bounded by the check above.
        let capacity = usize::try_from(meta.len()).unwrap_or(0).saturating_add(1);
        let mut bytes = Vec::with_capacity(capacity);
        let read = file
            .take(MAX_IDENTITY_FILE_SIZE)
            .read_to_end(&mut bytes)
            .map_err(unreadable);
        let bytes = SecretSlice::from(bytes);
        read?;
        let Ok(text) = std::str::from_utf8(bytes.expose_secret()) else {
            return Err(CryptError::IdentityFileMalformed {
                path: path.to_path_buf(),
                line: 1,
                reason: "the file is not text (UTF-8); an identity file is the text \
                         `age-keygen -o` writes",
            });
        };
        let keys = parse_identities(path, text)?;
        Ok(Identities {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// The [`fingerprint`] of the public key of every identity, in file
    /// order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|id| fingerprint(&id.to_public()))
            .collect()
    }

    /// The public key (`age1...`) of every identity, in file order: the
    /// recipients whose backups these identities can read.
    pub fn recipients(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|id| id.to_public().to_string())
            .collect()
    }

    /// The identity file these keys came from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn parse_identities(path: &Path, text: &str) -> Result<Vec<age::x25519::Identity>, CryptError> {
    let malformed = |line, reason| CryptError::IdentityFileMalformed {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "age-encryption.org/v1" || line.starts_with("-----BEGIN AGE ENCRYPTED FILE") {
            return Err(malformed(
                number,
                "the identity file is itself encrypted with a passphrase, which \
                 mongo-backupd cannot ask for; decrypt it (`age -d`) to a file only \
                 this user can read, and use that",
            ));
        }
        if line.starts_with("-----BEGIN") {
            return Err(malformed(
                number,
                "this is a PEM/SSH private key; mongo-backupd only reads age X25519 \
                 identities (`AGE-SECRET-KEY-1...`, from `age-keygen`)",
            ));
        }
        if line.starts_with("AGE-PLUGIN-") {
            return Err(malformed(
                number,
                "this is an age plugin identity, which mongo-backupd does not support; \
                 use an X25519 identity (`AGE-SECRET-KEY-1...`, from `age-keygen`)",
            ));
        }
        if line.starts_with("age1") {
            return Err(malformed(
                number,
                "this is a public key (`age1...`); an identity file must hold the secret \
                 key (`AGE-SECRET-KEY-1...`), which public keys cannot replace",
            ));
        }
        if starts_with_ci(line, "AGE-SECRET-KEY-PQ-") {
            return Err(malformed(
                number,
                "this is a post-quantum identity, which mongo-backupd does not support; \
                 use an X25519 identity (`AGE-SECRET-KEY-1...`)",
            ));
        }
        match line.parse::<age::x25519::Identity>() {
            Ok(key) => keys.push(key),
            Err(_) => {
                return Err(malformed(
                    number,
                    "it is neither a comment (`#`), a blank line nor a valid \
                     `AGE-SECRET-KEY-1...` key (a typo or an incomplete copy?)",
                ))
            }
        }
    }
    if keys.is_empty() {
        return Err(CryptError::IdentityFileEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(keys)
}

#[cfg(unix)]
fn warn_if_exposed(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "the identity file is readable by other users than its owner; anyone who can \
             read it can decrypt every backup encrypted to it: `chmod 600` it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_exposed(_path: &Path, _meta: &std::fs::Metadata) {}

/// Wraps `w`: what is written is encrypted to every recipient. The header
/// is written to `w` at once; call [`finish`](age::stream::StreamWriter::finish)
/// on the returned writer to write the final chunk, without which the file
/// is (detectably) truncated.
pub fn encrypt<W: Write>(
    recipients: &Recipients,
    w: W,
) -> Result<age::stream::StreamWriter<W>, CryptError> {
    let encryptor = age::Encryptor::with_recipients(
        recipients.keys.iter().map(|key| key as &dyn age::Recipient),
    )
    .map_err(|source| CryptError::Encrypt { source })?;
    encryptor.wrap_output(w).map_err(|source| CryptError::Io {
        what: "the age header".to_string(),
        op: "write",
        source,
    })
}

/// Wraps `r` for decryption. `what` names the file in messages. The header
/// is read and the file key unwrapped now; the data is decrypted and
/// authenticated as it is read, chunk by chunk, and a damaged, tampered or
/// truncated file makes a read fail (never return short data).
///
/// No matching identity gives [`CryptError::WrongIdentity`], listing the
/// identity file's fingerprints and the backup's (`expected`, from the
/// manifest; may be empty). Input that is not an age file, or whose header
/// is cut short or damaged, gives [`CryptError::Damaged`].
pub fn decrypt<R: Read>(
    ids: &Identities,
    r: R,
    what: &str,
    expected: &[String],
) -> Result<DecryptReader<R>, CryptError> {
    let decryptor = match age::Decryptor::new_buffered(BufReader::new(r)) {
        Ok(d) => d,
        Err(err) => return Err(header_error(what, err)),
    };
    let reader = decryptor
        .decrypt(ids.keys.iter().map(|key| key as &dyn age::Identity))
        .map_err(|err| match err {
            age::DecryptError::NoMatchingKeys => CryptError::WrongIdentity {
                what: what.to_string(),
                identity_file: ids.path.clone(),
                have: ids.fingerprints(),
                expected: expected.to_vec(),
            },
            other => header_error(what, other),
        })?;
    Ok(DecryptReader {
        inner: reader,
        what: what.to_string(),
        plaintext_pos: 0,
    })
}

fn header_error(what: &str, err: age::DecryptError) -> CryptError {
    let detail = match err {
        // An error from the OS is not damage; keep it as I/O so that it
        // is reported (and retried) as such.
        age::DecryptError::Io(e) if e.raw_os_error().is_some() => {
            return CryptError::Io {
                what: what.to_string(),
                op: "read",
                source: e,
            }
        }
        age::DecryptError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the file ends inside the age header (it was cut short, or is empty)".to_string()
        }
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            "it does not start with a valid age header".to_string()
        }
        age::DecryptError::InvalidMac => "the age header failed authentication (it was \
                                          damaged or tampered with)"
            .to_string(),
        other => format!("age reports: {other}"),
    };
    CryptError::Damaged {
        what: what.to_string(),
        detail,
    }
}

/// The plaintext of an age file, authenticated chunk by chunk as it is read.
/// Read errors from age are reworded so the message says what it means
/// (authentication failure: damage or tampering; missing final chunk:
/// truncation) and names the file and the offset.
pub struct DecryptReader<R: Read> {
    inner: age::stream::StreamReader<BufReader<R>>,
    what: String,
    plaintext_pos: u64,
}

impl<R: Read> fmt::Debug for DecryptReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecryptReader")
            .field("what", &self.what)
            .field("plaintext_pos", &self.plaintext_pos)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.plaintext_pos += n as u64;
                Ok(n)
            }
            // The OS's own errors (and interruptions) pass through unchanged
            // so callers can tell I/O failures from damage.
            Err(e) if e.raw_os_error().is_some() || e.kind() == io::ErrorKind::Interrupted => {
                Err(e)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} is truncated: the encrypted data ends after {} bytes of plaintext, \
                     before age's final chunk, so the file was cut short",
                    self.what, self.plaintext_pos
                ),
            )),
            Err(e) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: the encrypted data failed authentication in the 64 KiB chunk \
                     starting at plaintext byte {} (age: {e}); the file was damaged, \
                     tampered with or cut short, so do not trust it",
                    self.what,
                    self.plaintext_pos - self.plaintext_pos % CHUNK_SIZE
                ),
            )),
        }
    }
}

/// age's plaintext chunk size (fixed by the format).
const CHUNK_SIZE: u64 = 64 * 1024;

/// A new X25519 key pair: the secret key (`AGE-SECRET-KEY-1...`) and its
/// public key (`age1...`), for tests and documentation tooling. The daemon
/// itself never needs a secret key.
pub fn generate() -> (String, String) {
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    (identity.to_string().expose_secret().to_string(), public)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Data that compresses badly and spans several chunks, so chunk
    /// boundaries are exercised.
    fn data(len: usize) -> Vec<u8> {
        let mut x: u32 = 0x1234_5678;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    struct Key {
        secret: String,
        public: String,
        file: PathBuf,
    }

    fn key(dir: &Path, name: &str) -> Key {
        let (secret, public) = generate();
        let file = dir.join(name);
        std::fs::write(
            &file,
            format!("# created: 2026-01-01T00:00:00Z\n# public key: {public}\n{secret}\n"),
        )
        .unwrap();
        Key {
            secret,
            public,
            file,
        }
    }

    fn encrypt_bytes(recipients: &Recipients, plain: &[u8]) -> Vec<u8> {
        let mut w = encrypt(recipients, Vec::new()).unwrap();
        // Odd-sized writes, as a compressor produces them.
        for chunk in plain.chunks(7000) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn decrypt_bytes(ids: &Identities, cipher: &[u8]) -> Result<Vec<u8>, io::Error> {
        let mut r = decrypt(ids, cipher, "db/c.bson.zst.age", &[]).unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_two_recipients_either_identity_decrypts() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (key(dir.path(), "a.txt"), key(dir.path(), "b.txt"));
        let recipients = Recipients::parse(&[a.public.clone(), b.public.clone()]).unwrap();
        let plain = data(300 * 1024 + 17);
        let cipher = encrypt_bytes(&recipients, &plain);
        assert!(cipher.starts_with(b"age-encryption.org/v1\n"));
        assert!(cipher.len() > plain.len());
        fn assert_send_sync<T: Send + Sync>() {}
        // Readers and keys move into blocking tasks of the restore.
        assert_send_sync::<DecryptReader<std::fs::File>>();
        assert_send_sync::<Identities>();
        assert_send_sync::<Recipients>();
        for k in [&a, &b] {
            let ids = Identities::from_file(&k.file).unwrap();
            assert_eq!(decrypt_bytes(&ids, &cipher).unwrap(), plain);
        }
    }

    #[test]
    fn round_trip_at_chunk_size_edges() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path(), "k.txt");
        let recipients = Recipients::parse(std::slice::from_ref(&k.public)).unwrap();
        let ids = Identities::from_file(&k.file).unwrap();
        for len in [0, 1, 65535, 65536, 65537, 2 * 65536] {
            let plain = data(len);
            let cipher = encrypt_bytes(&recipients, &plain);
            assert_eq!(decrypt_bytes(&ids, &cipher).unwrap(), plain, "len {len}");
        }
    }

    #[test]
    fn wrong_identity_lists_both_fingerprint_lists() {
        let dir = tempfile::tempdir().unwrap();
        let (a, other) = (key(dir.path(), "a.txt"), key(dir.path(), "other.txt"));
        let recipients = Recipients::parse(std::slice::from_ref(&a.public)).unwrap();
        let cipher = encrypt_bytes(&recipients, b"secret data");
        let ids = Identities::from_file(&other.file).unwrap();
        let expected = recipients.fingerprints();
        let err = decrypt(&ids, &cipher[..], "shop/orders.bson.zst.age", &expected)
            .map(|_| ())
            .unwrap_err();
        assert!(matches!(err, CryptError::WrongIdentity { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("shop/orders.bson.zst.age"), "{msg}");
        assert!(msg.contains(&other.file.display().to_string()), "{msg}");
        assert!(msg.contains(&ids.fingerprints()[0]), "{msg}");
        assert!(msg.contains(&expected[0]), "{msg}");
        assert!(
            !msg.contains(&other.secret) && !msg.contains(&a.secret),
            "{msg}"
        );

        let err = decrypt(&ids, &cipher[..], "oplog.bson.age", &[])
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("manifest does not say which recipients"),
            "{err}"
        );
    }

    #[test]
    fn identity_file_missing_names_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope/key.txt");
        let err = Identities::from_file(&path).unwrap_err();
        assert!(
            matches!(err, CryptError::IdentityFileMissing { .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("age-keygen"), "{msg}");
    }

    #[test]
    fn identity_file_malformed_names_line_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, _) = generate();
        // A key with its last character cut off, on line 3.
        let broken = &secret[..secret.len() - 1];
        let path = dir.path().join("k.txt");
        std::fs::write(&path, format!("# comment\n\n{broken}\n")).unwrap();
        let err = Identities::from_file(&path).unwrap_err();
        assert!(
            matches!(err, CryptError::IdentityFileMalformed { line: 3, .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains(broken), "{msg}");
        assert!(!msg.contains(&broken[20..40]), "{msg}");
    }

    #[test]
    fn identity_file_with_public_key_or_nothing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, public) = generate();
        let path = dir.path().join("pub.txt");
        std::fs::write(&path, format!("{public}\n")).unwrap();
        let err = Identities::from_file(&path).unwrap_err();
        assert!(err.to_string().contains("public key"), "{err}");

        std::fs::write(&path, "# only a comment\n\n").unwrap();
        let err = Identities::from_file(&path).unwrap_err();
        assert!(matches!(err, CryptError::IdentityFileEmpty { .. }), "{err}");

        std::fs::write(&path, "age-encryption.org/v1\n-> scrypt abc 18\n").unwrap();
        let err = Identities::from_file(&path).unwrap_err();
        assert!(err.to_string().contains("passphrase"), "{err}");
    }

    #[test]
    fn identity_file_with_crlf_and_several_keys_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (s1, p1) = generate();
        let (s2, p2) = generate();
        let path = dir.path().join("keys.txt");
        std::fs::write(&path, format!("# two keys\r\n{s1}\r\n  {s2}  \r\n")).unwrap();
        let ids = Identities::from_file(&path).unwrap();
        let expected = Recipients::parse(&[p1, p2]).unwrap().fingerprints();
        assert_eq!(ids.fingerprints(), expected);
        // Debug shows the path and fingerprints, never a secret.
        let debug = format!("{ids:?}");
        assert!(debug.contains(&expected[0]), "{debug}");
        assert!(
            !debug.contains(&s1) && !debug.contains("AGE-SECRET"),
            "{debug}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_identity_file_still_loads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path(), "k.txt");
        std::fs::set_permissions(&k.file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            Identities::from_file(&k.file).unwrap().fingerprints().len(),
            1
        );
    }

    #[test]
    fn flipped_byte_fails_authentication() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path(), "k.txt");
        let recipients = Recipients::parse(std::slice::from_ref(&k.public)).unwrap();
        let ids = Identities::from_file(&k.file).unwrap();
        let mut cipher = encrypt_bytes(&recipients, &data(250 * 1024));
        let middle = cipher.len() / 2;
        cipher[middle] ^= 0x01;
        let err = decrypt_bytes(&ids, &cipher).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let msg = err.to_string();
        assert!(msg.contains("failed authentication"), "{msg}");
        assert!(msg.contains("damaged, tampered with"), "{msg}");
        assert!(msg.contains("db/c.bson.zst.age"), "{msg}");
    }

    #[test]
    fn truncated_ciphertext_always_fails() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path(), "k.txt");
        let recipients = Recipients::parse(std::slice::from_ref(&k.public)).unwrap();
        let ids = Identities::from_file(&k.file).unwrap();
        let chunk = 64 * 1024 + 16;
        let plain = data(3 * 64 * 1024 + 1000);
        let cipher = encrypt_bytes(&recipients, &plain);
        // The header's length varies (age adds a random "grease" stanza):
        // it ends with the MAC line `--- <base64>\n`, then comes the
        // 16-byte payload nonce.
        let mac_line = cipher.windows(5).position(|w| w == b"\n--- ").unwrap() + 1;
        let mac_end = mac_line + cipher[mac_line..].iter().position(|&b| b == b'\n').unwrap();
        let header = mac_end + 1 + 16;
        assert_eq!(cipher.len(), header + 3 * chunk + 1000 + 16);
        for cut in [
            header,             // no chunk at all
            header + chunk,     // exactly at a chunk boundary
            header + 2 * chunk, // another boundary
            header + 3 * chunk, // the boundary before the final chunk
            header + chunk + 5, // inside a chunk
            header + 100,
            cipher.len() - 1, // the last byte missing
        ] {
            let result = decrypt_bytes(&ids, &cipher[..cut]);
            let err = match result {
                Ok(out) => panic!("cut at {cut}: read {} bytes without error", out.len()),
                Err(err) => err,
            };
            let msg = err.to_string();
            assert!(
                msg.contains("truncated") || msg.contains("failed authentication"),
                "cut at {cut}: {msg}"
            );
        }
        // A cut at a chunk boundary is named as truncation.
        let err = decrypt_bytes(&ids, &cipher[..header + chunk]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        assert!(err.to_string().contains("is truncated"), "{err}");
        // Bytes appended after the final chunk are refused too.
        let mut grown = cipher.clone();
        grown.extend_from_slice(b"trailing garbage");
        assert!(decrypt_bytes(&ids, &grown).is_err());
        // Cuts inside the header fail when decryption starts.
        for cut in [0, 10, header - 1] {
            let err = decrypt(&ids, &cipher[..cut], "oplog.bson.age", &[])
                .map(|_| ())
                .unwrap_err();
            assert!(
                matches!(err, CryptError::Damaged { .. }),
                "cut {cut}: {err}"
            );
            assert!(
                err.to_string().contains("damaged or not encrypted"),
                "{err}"
            );
        }
    }

    #[test]
    fn plaintext_is_not_an_age_file() {
        let dir = tempfile::tempdir().unwrap();
        let k = key(dir.path(), "k.txt");
        let ids = Identities::from_file(&k.file).unwrap();
        let err = decrypt(
            &ids,
            &b"\x16\x00\x00\x00plain bson"[..],
            "db/c.bson.age",
            &[],
        )
        .map(|_| ())
        .unwrap_err();
        assert!(matches!(err, CryptError::Damaged { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("db/c.bson.age is damaged or not encrypted"),
            "{msg}"
        );
    }

    #[test]
    fn recipients_parse_refuses_what_is_not_an_x25519_recipient() {
        let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@host";
        let err = Recipients::parse(&[ssh.to_string()]).unwrap_err();
        assert!(
            matches!(err, CryptError::SshRecipient { index: 1 }),
            "{err}"
        );
        assert!(err.to_string().contains("age-keygen"), "{err}");

        let (secret, public) = generate();
        let err = Recipients::parse(&[public.clone(), format!("  {secret}\n")]).unwrap_err();
        assert!(
            matches!(err, CryptError::SecretKeyAsRecipient { index: 2 }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(!msg.contains(&secret), "{msg}");
        assert!(!msg.contains(&secret[15..]), "{msg}");
        assert!(!format!("{err:?}").contains(&secret[15..]));

        let err = Recipients::parse(&["hunter2".to_string()]).unwrap_err();
        assert!(matches!(err, CryptError::InvalidRecipient { .. }), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        // One character changed: the Bech32 checksum catches it.
        let mut typo = public.clone().into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'q' { b'p' } else { b'q' };
        let typo = String::from_utf8(typo).unwrap();
        let err = Recipients::parse(std::slice::from_ref(&typo)).unwrap_err();
        assert!(matches!(err, CryptError::InvalidRecipient { .. }), "{err}");
        assert!(err.to_string().contains(&typo), "{err}");

        let plugin = "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t";
        let err = Recipients::parse(&[plugin.to_string()]).unwrap_err();
        assert!(
            matches!(err, CryptError::UnsupportedRecipient { .. }),
            "{err}"
        );

        let err = Recipients::parse(&[]).unwrap_err();
        assert!(matches!(err, CryptError::NoRecipients), "{err}");
        let err = Recipients::parse(&[" ".to_string()]).unwrap_err();
        assert!(matches!(err, CryptError::InvalidRecipient { .. }), "{err}");
    }

    #[test]
    fn recipients_are_canonical_and_deduplicated() {
        let (_, public) = generate();
        let recipients =
            Recipients::parse(&[public.clone(), public.to_uppercase(), format!(" {public} ")])
                .unwrap();
        assert_eq!(recipients.fingerprints().len(), 1);
        let debug = format!("{recipients:?}");
        assert!(debug.contains(&recipients.fingerprints()[0]), "{debug}");
        assert!(!debug.contains(&public), "{debug}");
    }

    #[test]
    fn fingerprint_is_documented_prefix_of_sha256() {
        let (_, public) = generate();
        let recipient: age::x25519::Recipient = public.parse().unwrap();
        let fp = fingerprint(&recipient);
        let full = hex::encode(Sha256::digest(public.as_bytes()));
        assert_eq!(fp, format!("sha256:{}", &full[..32]));
        assert_eq!(fp.len(), "sha256:".len() + 32);
        assert!(public.starts_with("age1"));
    }
}
