//! `[storage.NAME]` tables: a local directory, or an object store (S3 or
//! an S3-compatible service, Azure Blob Storage, Google Cloud Storage).
//!
//! Each type has keys of its own, so a key is judged against the table's
//! `type`: a key of another type gets a hint naming the type rather than a
//! bare "unknown key". Bucket, account and container names are checked
//! against the services' rules here, because the service would otherwise
//! refuse them only at the first upload, hours later and at night.
//!
//! Credentials are never values in the file, only where to read them
//! (`*_file`, `*_env`), as for the SMTP password: a literal secret is
//! refused without being echoed, since `check-config` output ends up in
//! tickets and chat.

use std::time::Duration;

use crate::config::alerts::SecretSource;
use crate::config::build::{absolute_path, check_env_name, check_file_pattern};
use crate::config::error::Sink;
use crate::config::model::{Backend, ObjectService, ObjectSettings, StorageLocation};
use crate::config::reader::{type_name, Section, Spanned};
use crate::config::suggest::{closest, levenshtein, or_list};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;
/// Multipart parts: the range every supported service accepts.
const MIN_PART_SIZE: u64 = MIB;
const MAX_PART_SIZE: u64 = 5 * GIB;
/// AWS S3 itself rejects parts under 5 MiB (all but the last); S3-compatible
/// services reached through `endpoint` may not, so only real AWS gets this.
const MIN_AWS_PART_SIZE: u64 = 5 * MIB;
const SIZE_HINT: &str = "a whole number of bytes, or with a unit: KiB, MiB, GiB (powers of 1024) \
                         or KB, MB, GB (powers of 1000), e.g. \"16MiB\"";
const ENDPOINT_EXAMPLE: &str = "e.g. endpoint = \"https://minio.internal:9000\"";

const LOCAL_KEYS: [&str; 3] = ["type", "path", "retention"];
const S3_KEYS: [&str; 15] = [
    "type",
    "bucket",
    "region",
    "endpoint",
    "allow_http",
    "virtual_hosted_style",
    "access_key_id_file",
    "access_key_id_env",
    "secret_access_key_file",
    "secret_access_key_env",
    "prefix",
    "part_size",
    "ca_file",
    "timeout",
    "retention",
];
const AZURE_KEYS: [&str; 12] = [
    "type",
    "account",
    "container",
    "endpoint",
    "allow_http",
    "access_key_file",
    "access_key_env",
    "prefix",
    "part_size",
    "ca_file",
    "timeout",
    "retention",
];
const GCS_KEYS: [&str; 8] = [
    "type",
    "bucket",
    "service_account_file",
    "prefix",
    "part_size",
    "ca_file",
    "timeout",
    "retention",
];

/// The `type` of a storage location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StorageType {
    Local,
    S3,
    Azure,
    Gcs,
}

impl StorageType {
    const ALL: [StorageType; 4] = [
        StorageType::Local,
        StorageType::S3,
        StorageType::Azure,
        StorageType::Gcs,
    ];
    const NAMES: [&'static str; 4] = ["local", "s3", "azure", "gcs"];

    pub(crate) fn name(self) -> &'static str {
        match self {
            StorageType::Local => "local",
            StorageType::S3 => "s3",
            StorageType::Azure => "azure",
            StorageType::Gcs => "gcs",
        }
    }

    fn from_name(name: &str) -> Option<StorageType> {
        StorageType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// "a local location", "an s3 location": for messages.
    pub(crate) fn a_location(self) -> &'static str {
        match self {
            StorageType::Local => "a local location",
            StorageType::S3 => "an s3 location",
            StorageType::Azure => "an azure location",
            StorageType::Gcs => "a gcs location",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            StorageType::Local => &LOCAL_KEYS,
            StorageType::S3 => &S3_KEYS,
            StorageType::Azure => &AZURE_KEYS,
            StorageType::Gcs => &GCS_KEYS,
        }
    }

    /// Keys that would hold a secret in the file: refused with advice of
    /// their own instead of "unknown key", and never offered as valid.
    fn literal_secrets(self) -> &'static [&'static str] {
        match self {
            StorageType::S3 => &["access_key_id", "secret_access_key"],
            StorageType::Azure => &["access_key"],
            StorageType::Local | StorageType::Gcs => &[],
        }
    }

    /// What the keys of an object store live in, for hints.
    fn holder(self) -> &'static str {
        match self {
            StorageType::Azure => "container",
            _ => "bucket",
        }
    }
}

/// One `[storage.NAME]` table. Also returns the declared `type` when it is
/// valid, even if other keys are wrong, so jobs can be checked against it
/// (a job's primary storage must be local) without a second error.
pub(crate) fn storage_location(
    sink: &mut Sink<'_>,
    name: &str,
    section: &Section<'_>,
) -> (Option<StorageType>, Option<StorageLocation>) {
    let (declared, guess) = declared_type(sink, section);
    // With a missing or mistyped `type`, the keys are still checked against
    // the type they point to, so one run reports every mistake.
    let effective = declared.or(guess).or_else(|| infer_type(section));
    if !section.contains("type") {
        let hint = match effective {
            Some(t) => format!("type = {:?}", t.name()),
            None => format!(
                "type = {}",
                or_list(&["\"local\"", "\"s3\"", "\"azure\"", "\"gcs\""])
            ),
        };
        section.missing(sink, "type", Some(hint));
    }
    reject_foreign_keys(sink, section, effective);
    let literal = reject_literal_secrets(sink, section, effective);
    let retention = retention(sink, section);
    let Some(kind) = effective else {
        return (None, None);
    };
    let backend = match kind {
        StorageType::Local => local(sink, section),
        _ => object(sink, section, kind, &literal),
    };
    let location = match (declared, backend, retention) {
        (Some(_), Some(backend), Some(retention)) => Some(StorageLocation {
            name: name.to_string(),
            backend,
            retention,
        }),
        _ => None,
    };
    (declared, location)
}

/// The `type` if valid, else a guess at what was meant (reported as the
/// hint of the error).
fn declared_type(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
) -> (Option<StorageType>, Option<StorageType>) {
    if !section.contains("type") {
        return (None, None);
    }
    let Some(value) = section.string(sink, "type") else {
        return (None, None);
    };
    if let Some(kind) = StorageType::from_name(value.value) {
        return (Some(kind), None);
    }
    let guess = guess_type(value.value);
    let hint = match guess {
        Some((kind, Some(note))) => format!("did you mean {:?}? {note}", kind.name()),
        Some((kind, None)) => format!("did you mean {:?}?", kind.name()),
        None => "local is a directory (a mounted network share too); s3, azure and gcs are \
                 object stores"
            .to_string(),
    };
    sink.error(
        value.span,
        &section.key_path("type"),
        format!(
            "invalid storage type {:?} (expected {})",
            value.value,
            or_list(&StorageType::NAMES)
        ),
        Some(hint),
    );
    (None, guess.map(|(kind, _)| kind))
}

/// What a wrong `type` most likely meant: another case, a near miss, or a
/// name people use for the same thing. Stricter than the general
/// suggestions, since the names are so short that "nfs" is two edits from
/// "gcs".
fn guess_type(text: &str) -> Option<(StorageType, Option<&'static str>)> {
    use StorageType::{Azure, Gcs, Local, S3};
    let lower = text.to_ascii_lowercase();
    Some(match lower.as_str() {
        "nfs" | "cifs" | "smb" => (
            Local,
            Some("a network share is mounted and used as a local directory"),
        ),
        "file" | "files" | "fs" | "filesystem" | "dir" | "directory" | "disk" | "posix" => {
            (Local, None)
        }
        "aws" | "amazon" | "minio" | "ceph" | "r2" | "wasabi" | "s3-compatible" => (
            S3,
            Some("S3-compatible services are type = \"s3\" with their endpoint"),
        ),
        "blob" | "azblob" | "azure-blob" | "azureblob" | "abs" => (Azure, None),
        "gs" | "gcp" | "google" | "google-cloud-storage" => (Gcs, None),
        _ => {
            let near = StorageType::ALL.into_iter().find(|t| {
                let name = t.name();
                let distance = levenshtein(&lower, name);
                // Swapped letters ("gsc") count as a near miss too.
                let mut a: Vec<char> = lower.chars().collect();
                let mut b: Vec<char> = name.chars().collect();
                a.sort_unstable();
                b.sort_unstable();
                distance <= 1 || (distance == 2 && name.len() >= 5) || a == b
            })?;
            (near, None)
        }
    })
}

/// The type the keys belong to when `type` is missing or unrecognisable:
/// local for a table with only local keys (or none), else the one object
/// store whose keys they all are, if only one fits.
fn infer_type(section: &Section<'_>) -> Option<StorageType> {
    let keys: Vec<&str> = section
        .entries()
        .map(|(k, _)| k)
        .filter(|k| !matches!(*k, "type" | "retention"))
        .collect();
    let fits = |t: StorageType| {
        keys.iter()
            .all(|k| t.keys().contains(k) || t.literal_secrets().contains(k))
    };
    if fits(StorageType::Local) {
        return Some(StorageType::Local);
    }
    let mut fitting = [StorageType::S3, StorageType::Azure, StorageType::Gcs]
        .into_iter()
        .filter(|t| fits(*t));
    match (fitting.next(), fitting.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Keys that are not keys of `kind`: the unknown-key error, with a hint
/// naming the type when another type has the key. Without a type, only
/// keys that no type has are reported.
fn reject_foreign_keys(sink: &mut Sink<'_>, section: &Section<'_>, kind: Option<StorageType>) {
    for (key, _) in section.entries() {
        let owners: Vec<&str> = StorageType::ALL
            .into_iter()
            .filter(|t| t.keys().contains(&key))
            .map(StorageType::name)
            .collect();
        // Refused wherever it appears, but not unknown.
        let secret = StorageType::ALL
            .iter()
            .any(|t| t.literal_secrets().contains(&key));
        let hint = match kind {
            Some(kind) if kind.keys().contains(&key) || kind.literal_secrets().contains(&key) => {
                continue
            }
            None if !owners.is_empty() || secret => continue,
            Some(kind) if !owners.is_empty() || secret => {
                let mut hint = format!("{key:?} is not a key of {}", kind.a_location());
                if !owners.is_empty() {
                    let owners = or_list(&owners).replace(" or ", " and ");
                    hint.push_str(&format!(" ({owners} locations have it)"));
                }
                if let Some(instead) = equivalent(key, kind) {
                    hint.push_str("; ");
                    hint.push_str(instead);
                }
                hint
            }
            Some(kind) => match closest(key, kind.keys().iter().copied()) {
                Some(near) => format!("did you mean {near:?}?"),
                None => format!("valid keys here: {}", kind.keys().join(", ")),
            },
            None => {
                let all = StorageType::ALL
                    .iter()
                    .flat_map(|t| t.keys().iter().copied());
                match closest(key, all) {
                    Some(near) => format!("did you mean {near:?}?"),
                    None => "set type first: the valid keys depend on it".to_string(),
                }
            }
        };
        sink.error(
            section.key_span(key),
            &section.key_path(key),
            format!("unknown key {key:?}"),
            Some(hint),
        );
    }
}

/// What `kind` has instead of another type's `key`, where that is not
/// obvious.
fn equivalent(key: &str, kind: StorageType) -> Option<&'static str> {
    use StorageType::{Azure, Gcs, Local, S3};
    Some(match (kind, key) {
        (S3 | Gcs, "path") => "to keep backups under a folder of the bucket, use prefix",
        (Azure, "path") => "to keep backups under a folder of the container, use prefix",
        (Local, "prefix" | "bucket" | "container") => "a local location is the directory in path",
        (S3 | Gcs, "container") => "name the bucket with bucket",
        (Azure, "bucket") => {
            "name the container with container (and the storage account with account)"
        }
        (S3, k) if k.starts_with("access_key") => {
            "s3 credentials are access_key_id_file and secret_access_key_file (or the _env forms)"
        }
        (Azure, k) if k.starts_with("access_key_id") || k.starts_with("secret_access_key") => {
            "azure credentials are access_key_file or access_key_env"
        }
        (Gcs, k) if k.starts_with("access_key") || k.starts_with("secret_access_key") => {
            "gcs credentials come from service_account_file"
        }
        _ => return None,
    })
}

/// A secret written into the file would end up in backups of /etc, in
/// version control and in pasted `check-config` output. The value is never
/// read, let alone shown. Returns the keys found, so the incomplete
/// credential they leave is not reported a second time.
fn reject_literal_secrets(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    kind: Option<StorageType>,
) -> Vec<&'static str> {
    // Without a type, any type's secret keys: they are refused everywhere.
    let keys = StorageType::ALL
        .into_iter()
        .filter(|t| kind.is_none_or(|k| k == *t))
        .flat_map(StorageType::literal_secrets);
    let mut found = Vec::new();
    for &key in keys {
        if !section.contains(key) {
            continue;
        }
        let what = match key {
            "access_key_id" => "access key ids",
            "secret_access_key" => "secret access keys",
            _ => "storage account keys",
        };
        sink.error(
            section.key_span(key),
            &section.key_path(key),
            format!("{what} are not written in the configuration file"),
            Some(format!(
                "put it in a file readable only by the daemon and set {key}_file, or set {key}_env"
            )),
        );
        found.push(key);
    }
    found
}

/// `retention`: `Some(None)` when not set (the jobs' own retention applies).
fn retention(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<Option<Duration>> {
    if !section.contains("retention") {
        return Some(None);
    }
    let age = section.duration(sink, "retention", "wdh")?;
    if age.value.is_zero() {
        sink.error(
            age.span,
            &section.key_path("retention"),
            "retention must be longer than 0",
            Some(
                "a retention of 0 would delete every backup at this location as soon as it \
                 is made"
                    .to_string(),
            ),
        );
        return None;
    }
    Some(Some(age.value))
}

fn local(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<Backend> {
    if !section.contains("path") {
        section.missing(
            sink,
            "path",
            Some(
                "the directory backups go to, e.g. path = \"/var/backups/mongo-backupd\""
                    .to_string(),
            ),
        );
        return None;
    }
    absolute_path(sink, section, "path").map(|path| Backend::Local { path })
}

/// The settings every object store shares, and its own.
fn object(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    kind: StorageType,
    literal: &[&str],
) -> Option<Backend> {
    let service = match kind {
        StorageType::S3 => s3(sink, section, literal),
        StorageType::Azure => azure(sink, section, literal),
        _ => gcs(sink, section),
    };
    let prefix = prefix(sink, section, kind);
    // Any endpoint, even a broken one, means a service other than AWS.
    let aws = kind == StorageType::S3 && !section.contains("endpoint");
    let part_size = part_size(sink, section, aws);
    let ca_file = match section.contains("ca_file") {
        true => absolute_path(sink, section, "ca_file").map(Some),
        false => Some(None),
    };
    let timeout = timeout(sink, section);
    Some(Backend::Object(ObjectSettings {
        service: service?,
        prefix: prefix?,
        part_size: part_size?,
        ca_file: ca_file?,
        timeout: timeout?,
    }))
}

fn s3(sink: &mut Sink<'_>, section: &Section<'_>, literal: &[&str]) -> Option<ObjectService> {
    let bucket = name(
        sink,
        section,
        "bucket",
        s3_bucket_problem,
        "S3 bucket",
        "S3 bucket names are 3-63 lowercase letters, digits, \".\" and \"-\", starting and \
         ending with a letter or digit, e.g. bucket = \"acme-mongo-backups\"",
    );
    let region = region(sink, section);
    let endpoint = endpoint(sink, section, StorageType::S3);
    let allow_http = bool_or(sink, section, "allow_http", false);
    let virtual_hosted_style = bool_or(sink, section, "virtual_hosted_style", false);
    let http_ok = check_http(sink, section, endpoint.as_ref(), allow_http);
    let id = secret_pair(
        sink,
        section,
        ["access_key_id_file", "access_key_id_env"],
        "the access key id",
        "AWS_ACCESS_KEY_ID",
    );
    let secret = secret_pair(
        sink,
        section,
        ["secret_access_key_file", "secret_access_key_env"],
        "the secret access key",
        "AWS_SECRET_ACCESS_KEY",
    );
    // An access key is its id and its secret together; half of one would
    // fail at the first upload, so it is caught here.
    let pair_ok = match (&id, &secret) {
        (Some(Some((_, key))), Some(None)) if !literal.contains(&"secret_access_key") => {
            half_credential(sink, section, key, "secret_access_key");
            false
        }
        (Some(None), Some(Some((_, key)))) if !literal.contains(&"access_key_id") => {
            half_credential(sink, section, key, "access_key_id");
            false
        }
        _ => true,
    };
    let (id, secret) = (id?, secret?);
    if !(pair_ok && http_ok && literal.is_empty()) {
        return None;
    }
    Some(ObjectService::S3 {
        bucket: bucket?,
        region: region?,
        endpoint: endpoint?.map(|e| e.url),
        allow_http: allow_http?,
        virtual_hosted_style: virtual_hosted_style?,
        access_key_id: id.map(|(source, _)| source),
        secret_access_key: secret.map(|(source, _)| source),
    })
}

fn half_credential(sink: &mut Sink<'_>, section: &Section<'_>, key: &str, missing: &str) {
    sink.error(
        section.key_span(key),
        &section.key_path(key),
        format!("{key} is set but neither {missing}_file nor {missing}_env"),
        Some(format!(
            "an access key is its id and its secret: set {missing}_file or {missing}_env too, \
             or remove {key} to use the platform's credentials (AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY, web identity, ECS or EC2 instance role)"
        )),
    );
}

fn azure(sink: &mut Sink<'_>, section: &Section<'_>, literal: &[&str]) -> Option<ObjectService> {
    let account = name(
        sink,
        section,
        "account",
        azure_account_problem,
        "Azure storage account",
        "storage account names are 3-24 lowercase letters and digits: the NAME of \
         NAME.blob.core.windows.net",
    );
    let container = name(
        sink,
        section,
        "container",
        azure_container_problem,
        "Azure container",
        "container names are 3-63 lowercase letters, digits and single \"-\", starting and \
         ending with a letter or digit, e.g. container = \"mongo-backups\"",
    );
    let endpoint = endpoint(sink, section, StorageType::Azure);
    let allow_http = bool_or(sink, section, "allow_http", false);
    let http_ok = check_http(sink, section, endpoint.as_ref(), allow_http);
    let access_key = secret_pair(
        sink,
        section,
        ["access_key_file", "access_key_env"],
        "the storage account key",
        "AZURE_STORAGE_ACCESS_KEY",
    );
    if !http_ok || !literal.is_empty() {
        return None;
    }
    Some(ObjectService::Azure {
        account: account?,
        container: container?,
        endpoint: endpoint?.map(|e| e.url),
        allow_http: allow_http?,
        access_key: access_key?.map(|(source, _)| source),
    })
}

fn gcs(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<ObjectService> {
    let bucket = name(
        sink,
        section,
        "bucket",
        gcs_bucket_problem,
        "GCS bucket",
        "GCS bucket names are 3-63 lowercase letters, digits, \"-\", \"_\" and \".\" (up to \
         222 with dots, 63 between dots), starting and ending with a letter or digit",
    );
    let service_account_file = match section.contains("service_account_file") {
        true => absolute_path(sink, section, "service_account_file").map(Some),
        false => Some(None),
    };
    Some(ObjectService::Gcs {
        bucket: bucket?,
        service_account_file: service_account_file?,
    })
}

/// A required bucket, account or container name, checked by `problem`
/// (which says what is wrong with a bad one).
fn name(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    key: &str,
    problem: fn(&str) -> Option<String>,
    what: &str,
    rules: &str,
) -> Option<String> {
    let value = section.required_string(sink, key, Some(rules.to_string()))?;
    let text = value.value;
    let message = if text.is_empty() {
        format!("{key} is empty")
    } else {
        match problem(text) {
            Some(reason) => format!("{text:?} is not a valid {what} name: {reason}"),
            None => return Some(text.to_string()),
        }
    };
    sink.error(
        value.span,
        &section.key_path(key),
        message,
        Some(rules.to_string()),
    );
    None
}

/// The first rule `name` breaks of the characters allowed and how it may
/// start and end, or `None`.
fn charset_problem(name: &str, allowed: impl Fn(char) -> bool) -> Option<String> {
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Some("it has uppercase letters".to_string());
    }
    if let Some(bad) = name.chars().find(|c| !allowed(*c)) {
        return Some(format!("it contains {:?}", bad.to_string()));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge(name.chars().next()) || !edge(name.chars().next_back()) {
        return Some("it must start and end with a letter or digit".to_string());
    }
    None
}

fn length_problem(name: &str, min: usize, max: usize) -> Option<String> {
    let len = name.chars().count();
    (!(min..=max).contains(&len))
        .then(|| format!("it is {len} characters long, not {min} to {max}"))
}

fn looks_like_ipv4(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// AWS's rules for general purpose buckets, which S3-compatible services
/// follow too.
fn s3_bucket_problem(name: &str) -> Option<String> {
    length_problem(name, 3, 63)
        .or_else(|| {
            charset_problem(name, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'
            })
        })
        .or_else(|| {
            if name.contains("..") {
                Some("it contains \"..\"".to_string())
            } else if looks_like_ipv4(name) {
                Some("it is formatted as an IP address".to_string())
            } else if ["xn--", "sthree-"].iter().any(|p| name.starts_with(p))
                || ["-s3alias", "--ol-s3"].iter().any(|s| name.ends_with(s))
            {
                Some("it uses a prefix or suffix AWS reserves".to_string())
            } else {
                None
            }
        })
}

fn azure_account_problem(name: &str) -> Option<String> {
    if name.contains('.') {
        return Some(
            "it contains \".\" (give only the account name; set endpoint for another URL)"
                .to_string(),
        );
    }
    length_problem(name, 3, 24)
        .or_else(|| charset_problem(name, |c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

fn azure_container_problem(name: &str) -> Option<String> {
    length_problem(name, 3, 63)
        .or_else(|| {
            charset_problem(name, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
            })
        })
        .or_else(|| {
            name.contains("--")
                .then(|| "it contains \"--\"".to_string())
        })
}

fn gcs_bucket_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    let dotted = name.contains('.');
    if dotted && len <= 222 {
        if let Some(long) = name.split('.').find(|p| p.chars().count() > 63) {
            return Some(format!("the part {long:?} is longer than 63 characters"));
        }
    }
    let max = if dotted { 222 } else { 63 };
    length_problem(name, 3, max)
        .or_else(|| {
            charset_problem(name, |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            })
        })
        .or_else(|| {
            if looks_like_ipv4(name) {
                Some("it is formatted as an IP address".to_string())
            } else if name.starts_with("goog") || name.contains("google") {
                Some(
                    "names starting with \"goog\" or containing \"google\" are reserved"
                        .to_string(),
                )
            } else {
                None
            }
        })
}

/// `region`: `Some(None)` when not set. Only its shape is checked:
/// S3-compatible services name their regions freely.
fn region(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<Option<String>> {
    if !section.contains("region") {
        return Some(None);
    }
    let value = section.string(sink, "region")?;
    let text = value.value;
    let (message, hint) = if text.is_empty() {
        (
            "region is empty".to_string(),
            "remove region for the default (us-east-1), or name one, e.g. region = \"eu-west-1\""
                .to_string(),
        )
    } else if text.contains("://") || text.contains('/') {
        (
            format!("region must be a region name, not a URL: {text:?}"),
            "set the URL with endpoint, e.g. region = \"eu-west-1\"".to_string(),
        )
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        (
            format!("region {text:?} contains whitespace"),
            "e.g. region = \"eu-west-1\"".to_string(),
        )
    } else {
        return Some(Some(text.to_string()));
    };
    sink.error(value.span, &section.key_path("region"), message, Some(hint));
    None
}

/// A checked `endpoint`.
struct Endpoint {
    url: String,
    http: bool,
    span: crate::config::reader::Span,
}

/// `endpoint`: an http:// or https:// URL with a host, an optional port and
/// path, and nothing else. `Some(None)` when not set.
fn endpoint(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    kind: StorageType,
) -> Option<Option<Endpoint>> {
    if !section.contains("endpoint") {
        return Some(None);
    }
    let value = section.string(sink, "endpoint")?;
    let text = value.value;
    let example = match kind {
        StorageType::Azure => "e.g. endpoint = \"https://backups.blob.core.example.net\"",
        _ => ENDPOINT_EXAMPLE,
    };
    match endpoint_problem(text) {
        Ok(http) => Some(Some(Endpoint {
            url: text.to_string(),
            http,
            span: value.span,
        })),
        Err((message, hint)) => {
            let hint = hint.unwrap_or_else(|| example.to_string());
            sink.error(
                value.span,
                &section.key_path("endpoint"),
                message,
                Some(hint),
            );
            None
        }
    }
}

/// Whether `text` is an http:// (`true`) or https:// URL, or what is
/// wrong with it (and a hint, when the example is not enough).
fn endpoint_problem(text: &str) -> Result<bool, (String, Option<String>)> {
    if text.is_empty() {
        return Err(("endpoint is empty".to_string(), None));
    }
    let scheme_end = text.find("://");
    let (scheme, rest) = match scheme_end {
        Some(at) => (text[..at].to_ascii_lowercase(), &text[at + 3..]),
        None => (String::new(), text),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Checked first, and the URL not quoted: it may hold a password.
    if authority.contains('@') {
        return Err((
            "endpoint must not contain a user name or password".to_string(),
            Some(
                "remove them from the URL: credentials are set with the location's *_file or \
                 *_env keys, or come from the platform"
                    .to_string(),
            ),
        ));
    }
    let http = match (scheme_end, scheme.as_str()) {
        (Some(_), "https") => false,
        (Some(_), "http") => true,
        (Some(_), _) => {
            return Err((
                format!("endpoint must be an http:// or https:// URL, found {text:?}"),
                None,
            ))
        }
        (None, _) => {
            return Err((
                format!("endpoint {text:?} has no scheme"),
                Some(format!("write the URL: endpoint = \"https://{text}\"")),
            ))
        }
    };
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err((format!("endpoint {text:?} contains whitespace"), None));
    }
    if text.contains(['?', '#']) {
        return Err((
            format!("endpoint {text:?} has a query or fragment"),
            Some("give the scheme, host, port and path only".to_string()),
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 address: [::1]:9000.
        Some(inner) => match inner.split_once(']') {
            Some((ip, after)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => {
                (ip, after.strip_prefix(':'))
            }
            _ => {
                return Err((
                    format!("endpoint {text:?} has an invalid IPv6 address"),
                    None,
                ))
            }
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err((format!("endpoint {text:?} has no host"), None));
    }
    let host_ok = authority.starts_with('[')
        || host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !host_ok {
        return Err((
            format!("endpoint {text:?} has an invalid host {host:?}"),
            None,
        ));
    }
    if let Some(port) = port {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err((
                format!("endpoint {text:?} has an invalid port {port:?}"),
                None,
            ));
        }
    }
    Ok(http)
}

/// Plain HTTP only when asked for: the requests carry the credentials and
/// the backups themselves. Returns whether the endpoint may be used.
fn check_http(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    endpoint: Option<&Option<Endpoint>>,
    allow_http: Option<bool>,
) -> bool {
    let Some(Some(endpoint)) = endpoint else {
        return true;
    };
    // A broken allow_http has its own error.
    if !endpoint.http || allow_http != Some(false) {
        return true;
    }
    sink.error(
        endpoint.span.clone(),
        &section.key_path("endpoint"),
        format!(
            "endpoint {:?} uses plain http://: the credentials and the backups would cross \
             the network unencrypted",
            endpoint.url
        ),
        Some(
            "use https://, or set allow_http = true if the service runs on this machine or \
             a network you trust (e.g. a local MinIO or Azurite)"
                .to_string(),
        ),
    );
    false
}

/// At most one of `keys` (`[NAME_file, NAME_env]`), with the key it came
/// from; `Some(None)` when neither is set. `what` names the secret for
/// hints, `env_example` is a variable name to suggest.
fn secret_pair(
    sink: &mut Sink<'_>,
    section: &Section<'_>,
    keys: [&'static str; 2],
    what: &str,
    env_example: &str,
) -> Option<Option<(SecretSource, &'static str)>> {
    let [file_key, env_key] = keys;
    let mut present: Vec<&'static str> = keys.into_iter().filter(|k| section.contains(k)).collect();
    present.sort_by_key(|k| section.key_span(k).map_or(0, |s| s.start));
    let key = match present.as_slice() {
        [] => return Some(None),
        [key] => *key,
        // At the second key: the first one was fine on its own.
        [first, second, ..] => {
            sink.error(
                section.key_span(second),
                &section.key_path(second),
                format!("{first} and {second} are both set"),
                Some(format!(
                    "set {file_key} (a file holding {what}) or {env_key} (an environment \
                     variable holding it), not both"
                )),
            );
            return None;
        }
    };
    let value = section.string(sink, key)?;
    let text = value.value;
    let problem = if key == file_key {
        check_file_pattern(
            key,
            text,
            what,
            &format!(
                "e.g. \"/etc/mongo-backupd/{0}\" or \"${{CREDENTIALS_DIRECTORY}}/{0}\"",
                file_key.trim_end_matches("_file").replace('_', "-")
            ),
        )
    } else {
        check_env_name(key, text, env_example)
    };
    if let Some((message, hint)) = problem {
        sink.error(value.span, &section.key_path(key), message, Some(hint));
        return None;
    }
    let source = if key == file_key {
        SecretSource::File(text.into())
    } else {
        SecretSource::Env(text.to_string())
    };
    Some(Some((source, key)))
}

/// `prefix`: "" or a relative key prefix, normalised to end with "/".
fn prefix(sink: &mut Sink<'_>, section: &Section<'_>, kind: StorageType) -> Option<String> {
    if !section.contains("prefix") {
        return Some(String::new());
    }
    let value = section.string(sink, "prefix")?;
    let text = value.value;
    if text.is_empty() {
        return Some(String::new());
    }
    let body = text.strip_suffix('/').unwrap_or(text);
    let segments: Vec<&str> = body.split('/').collect();
    let holder = kind.holder();
    let (message, hint) = if text.starts_with('/') {
        let trimmed = text.trim_matches('/');
        let hint = if trimmed.is_empty() {
            format!("remove prefix to keep backups at the top of the {holder}")
        } else {
            format!("keys are relative to the {holder}: prefix = \"{trimmed}/\"")
        };
        (format!("prefix {text:?} must not start with \"/\""), hint)
    } else if segments.iter().any(|s| s.is_empty()) {
        (
            format!("prefix {text:?} has an empty segment (\"//\")"),
            "object stores keep \"a//b\" and \"a/b\" apart; write each \"/\" once".to_string(),
        )
    } else if segments.iter().any(|s| matches!(*s, "." | "..")) {
        (
            format!("prefix {text:?} contains a \".\" or \"..\" segment"),
            "object keys have no relative paths; write the folder out, e.g. \
             prefix = \"mongo-backupd/\""
                .to_string(),
        )
    } else if text.chars().any(char::is_control) {
        (
            format!("prefix {text:?} contains a control character"),
            "e.g. prefix = \"mongo-backupd/\"".to_string(),
        )
    } else {
        return Some(format!("{body}/"));
    };
    sink.error(value.span, &section.key_path("prefix"), message, Some(hint));
    None
}

/// `part_size`: a size string or a number of bytes, in range; with `aws`
/// (s3 without an endpoint) at least AWS's own minimum.
fn part_size(sink: &mut Sink<'_>, section: &Section<'_>, aws: bool) -> Option<u64> {
    let key = "part_size";
    let Some((_, item)) = section.entries().find(|(k, _)| *k == key) else {
        return Some(ObjectSettings::DEFAULT_PART_SIZE);
    };
    let span = section.value_span(key);
    let path = section.key_path(key);
    let (bytes, written) = if let Some(n) = item.as_integer() {
        match u64::try_from(n) {
            Ok(n) => (n, n.to_string()),
            Err(_) => {
                sink.error(
                    span,
                    &path,
                    format!("part_size = {n} is negative"),
                    Some(SIZE_HINT.to_string()),
                );
                return None;
            }
        }
    } else if let Some(text) = item.as_str() {
        match parse_size(text) {
            Ok(n) => (n, format!("{text:?}")),
            Err(reason) => {
                sink.error(
                    span,
                    &path,
                    format!("invalid size {text:?}: {reason}"),
                    Some(SIZE_HINT.to_string()),
                );
                return None;
            }
        }
    } else {
        sink.error(
            span,
            &path,
            format!("expected a size, found {}", type_name(item)),
            Some(SIZE_HINT.to_string()),
        );
        return None;
    };
    let default = format_size(ObjectSettings::DEFAULT_PART_SIZE);
    let (message, hint) = if aws && bytes < MIN_AWS_PART_SIZE {
        (
            format!(
                "part_size = {written} is below {}, the smallest part AWS S3 accepts",
                format_size(MIN_AWS_PART_SIZE)
            ),
            format!(
                "AWS rejects multipart upload parts under 5MiB (but the last); use at least \
                 part_size = \"5MiB\" (the default is {default}); S3-compatible services set \
                 with endpoint may allow smaller parts"
            ),
        )
    } else if bytes < MIN_PART_SIZE {
        (
            format!(
                "part_size = {written} is below the minimum of {}",
                format_size(MIN_PART_SIZE)
            ),
            format!("parts are 1MiB to 5GiB; the default is {default}"),
        )
    } else if bytes > MAX_PART_SIZE {
        (
            format!(
                "part_size = {written} is above the maximum of {}",
                format_size(MAX_PART_SIZE)
            ),
            format!("parts are 1MiB to 5GiB; the default is {default}"),
        )
    } else {
        return Some(bytes);
    };
    sink.error(span, &path, message, Some(hint));
    None
}

/// Parses a size: a whole number of bytes, optionally followed (after at
/// most one space) by a unit: B, KiB, MiB, GiB, TiB (powers of 1024) or KB,
/// MB, GB, TB (powers of 1000), in any case. A bare K, M or G is refused:
/// half of the readers take it as 1000, half as 1024.
///
/// The error says what is wrong without repeating the text.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    if text.is_empty() {
        return Err("the size is empty".to_string());
    }
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return Err(if text.starts_with('-') {
            "a size cannot be negative".to_string()
        } else {
            "a size starts with a number".to_string()
        });
    }
    let number: u64 = text[..digits].parse().map_err(|_| too_large())?;
    let rest = &text[digits..];
    if rest.starts_with(['.', ',']) {
        return Err("fractions are not supported (write \"1536MiB\", not \"1.5GiB\")".to_string());
    }
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => KIB,
        "mib" => MIB,
        "gib" => GIB,
        "tib" => TIB,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "m" | "g" | "t" | "ki" | "mi" | "gi" | "ti" => {
            let letter = unit[..1].to_ascii_uppercase();
            return Err(format!(
                "{unit:?} is ambiguous: write {letter}iB (powers of 1024) or {letter}B (powers of 1000)"
            ));
        }
        _ => return Err(format!("unknown unit {unit:?}")),
    };
    number.checked_mul(multiplier).ok_or_else(too_large)
}

fn too_large() -> String {
    "the size is too large".to_string()
}

/// `16MiB`, `5GiB`, or a number of bytes when no binary unit divides it;
/// [`parse_size`] reads it back.
pub(crate) fn format_size(bytes: u64) -> String {
    for (unit, size) in [("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// `timeout`: per request, default 5 minutes, at least a second.
fn timeout(sink: &mut Sink<'_>, section: &Section<'_>) -> Option<Duration> {
    if !section.contains("timeout") {
        return Some(ObjectSettings::DEFAULT_TIMEOUT);
    }
    let Spanned { value, span } = section.duration(sink, "timeout", "wdhms")?;
    if value < Duration::from_secs(1) {
        sink.error(
            span,
            &section.key_path("timeout"),
            "timeout must be at least 1s",
            Some(
                "the longest one request to the object store may take, e.g. timeout = \"5m\""
                    .to_string(),
            ),
        );
        return None;
    }
    Some(value)
}

fn bool_or(sink: &mut Sink<'_>, section: &Section<'_>, key: &str, default: bool) -> Option<bool> {
    match section.contains(key) {
        true => section.boolean(sink, key),
        false => Some(default),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use super::*;

    #[test]
    fn sizes_with_binary_and_decimal_units() {
        assert_eq!(parse_size("5MiB"), Ok(5 * MIB));
        assert_eq!(parse_size("16MiB"), Ok(16 * MIB));
        assert_eq!(parse_size("1GiB"), Ok(GIB));
        assert_eq!(parse_size("512KiB"), Ok(512 * KIB));
        assert_eq!(parse_size("1TiB"), Ok(TIB));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("100KB"), Ok(100_000));
        assert_eq!(parse_size("8388608"), Ok(8 * MIB));
        assert_eq!(parse_size("8388608B"), Ok(8 * MIB));
        assert_eq!(parse_size("16 MiB"), Ok(16 * MIB));
        assert_eq!(parse_size("16mib"), Ok(16 * MIB));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn sizes_rejected_with_reasons() {
        let err = |s: &str| parse_size(s).unwrap_err();
        assert_eq!(err(""), "the size is empty");
        assert_eq!(err("MiB"), "a size starts with a number");
        assert_eq!(err("-5MiB"), "a size cannot be negative");
        assert_eq!(
            err("1.5GiB"),
            "fractions are not supported (write \"1536MiB\", not \"1.5GiB\")"
        );
        assert_eq!(
            err("16M"),
            "\"M\" is ambiguous: write MiB (powers of 1024) or MB (powers of 1000)"
        );
        assert_eq!(
            err("1g"),
            "\"g\" is ambiguous: write GiB (powers of 1024) or GB (powers of 1000)"
        );
        assert_eq!(err("5XB"), "unknown unit \"XB\"");
        assert_eq!(err("5  MiB"), "unknown unit \" MiB\"");
        assert_eq!(err("99999999999999999999"), "the size is too large");
        assert_eq!(err("99999999TiB"), "the size is too large");
    }

    #[test]
    fn sizes_format_and_read_back() {
        for bytes in [
            MIB,
            5 * MIB,
            16 * MIB,
            GIB,
            5 * GIB,
            1536 * MIB,
            1000,
            1,
            3 * KIB,
        ] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes), "{bytes}");
        }
        assert_eq!(format_size(16 * MIB), "16MiB");
        assert_eq!(format_size(5 * GIB), "5GiB");
        assert_eq!(format_size(1536 * MIB), "1536MiB");
        assert_eq!(format_size(5_000_000), "5000000B");
    }

    #[test]
    fn name_rules() {
        assert_eq!(s3_bucket_problem("acme-backups.eu"), None);
        assert!(s3_bucket_problem("ab").unwrap().contains("2 characters"));
        assert_eq!(
            s3_bucket_problem("Acme").as_deref(),
            Some("it has uppercase letters")
        );
        assert_eq!(
            s3_bucket_problem("a_b").as_deref(),
            Some("it contains \"_\"")
        );
        assert!(s3_bucket_problem("-ab").unwrap().contains("start and end"));
        assert_eq!(
            s3_bucket_problem("a..b").as_deref(),
            Some("it contains \"..\"")
        );
        assert!(s3_bucket_problem("192.168.1.1")
            .unwrap()
            .contains("IP address"));
        assert!(s3_bucket_problem("xn--abc").unwrap().contains("reserves"));

        assert_eq!(azure_account_problem("acmebackups"), None);
        assert!(azure_account_problem("acme-backups").is_some());
        assert!(azure_account_problem(&"a".repeat(25)).is_some());
        assert_eq!(azure_container_problem("mongo-backups"), None);
        assert_eq!(
            azure_container_problem("mongo--backups").as_deref(),
            Some("it contains \"--\"")
        );

        assert_eq!(gcs_bucket_problem("acme_backups"), None);
        assert_eq!(
            gcs_bucket_problem(&format!("{}.example.com", "a".repeat(60))),
            None
        );
        assert!(gcs_bucket_problem(&"a".repeat(64)).is_some());
        assert!(gcs_bucket_problem(&format!("{}.com", "a".repeat(64)))
            .unwrap()
            .contains("longer than 63"));
        assert!(gcs_bucket_problem("google-backups")
            .unwrap()
            .contains("reserved"));
    }

    #[test]
    fn endpoints() {
        assert_eq!(endpoint_problem("https://minio.internal:9000"), Ok(false));
        assert_eq!(
            endpoint_problem("http://127.0.0.1:10000/devstoreaccount1"),
            Ok(true)
        );
        assert_eq!(endpoint_problem("https://[::1]:9000/"), Ok(false));
        assert_eq!(endpoint_problem("HTTPS://s3.example.com"), Ok(false));
        let message = |s: &str| endpoint_problem(s).unwrap_err().0;
        assert_eq!(
            message("ftp://x"),
            "endpoint must be an http:// or https:// URL, found \"ftp://x\""
        );
        assert_eq!(
            message("minio:9000"),
            "endpoint \"minio:9000\" has no scheme"
        );
        assert_eq!(message("https://"), "endpoint \"https://\" has no host");
        assert_eq!(message("https:///x"), "endpoint \"https:///x\" has no host");
        assert_eq!(
            message("https://h?x=1"),
            "endpoint \"https://h?x=1\" has a query or fragment"
        );
        assert_eq!(
            message("https://h:99999"),
            "endpoint \"https://h:99999\" has an invalid port \"99999\""
        );
        assert_eq!(
            message("https://h:"),
            "endpoint \"https://h:\" has an invalid port \"\""
        );
        assert_eq!(
            message("https://h h"),
            "endpoint \"https://h h\" contains whitespace"
        );
        assert_eq!(
            message("https://[zz]:1"),
            "endpoint \"https://[zz]:1\" has an invalid IPv6 address"
        );
        let secret = message("https://key:hunter2@minio:9000");
        assert!(!secret.contains("hunter2"), "{secret}");
    }

    #[test]
    fn type_guesses() {
        let guess = |s: &str| guess_type(s).map(|(t, _)| t);
        assert_eq!(guess("locl"), Some(StorageType::Local));
        assert_eq!(guess("S3"), Some(StorageType::S3));
        assert_eq!(guess("gsc"), Some(StorageType::Gcs));
        assert_eq!(guess("azur"), Some(StorageType::Azure));
        assert_eq!(guess("minio"), Some(StorageType::S3));
        assert_eq!(guess("nfs"), Some(StorageType::Local));
        assert_eq!(guess("google"), Some(StorageType::Gcs));
        assert_eq!(guess("tape"), None);
        assert_eq!(guess("s4x"), None);
    }
}
