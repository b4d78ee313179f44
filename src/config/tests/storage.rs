//! `[storage.NAME]` of every type, and the jobs' `storage`, `copies`,
//! `encrypt_to` and `encrypt_to_file`: every key read into the model, and
//! each error with its exact text and position. Secrets written where they
//! do not belong must never appear in an error.

use std::path::PathBuf;
use std::time::Duration;

use super::{at, errors, parse_ok, the_error, BASE};
use crate::config::{
    Backend, Encryption, ObjectService, ObjectSettings, SecretSource, StorageLocation,
};

const MIB: u64 = 1024 * 1024;
const DAY: u64 = 86_400;

/// `[storage.offsite]` on line 1, `body` from line 2.
fn location(body: &str) -> String {
    format!("[storage.offsite]\n{body}")
}

/// An s3 location (lines 1-3) with `extra` from line 4.
fn s3(extra: &str) -> String {
    location(&format!(
        "type = \"s3\"\nbucket = \"acme-backups\"\n{extra}"
    ))
}

/// An azure location (lines 1-4) with `extra` from line 5.
fn azure(extra: &str) -> String {
    location(&format!(
        "type = \"azure\"\naccount = \"acmebackups\"\ncontainer = \"mongo\"\n{extra}"
    ))
}

/// A gcs location (lines 1-3) with `extra` from line 4.
fn gcs(extra: &str) -> String {
    location(&format!(
        "type = \"gcs\"\nbucket = \"acme_backups\"\n{extra}"
    ))
}

fn offsite(text: &str) -> StorageLocation {
    parse_ok(text)
        .storage
        .remove("offsite")
        .expect("[storage.offsite]")
}

fn object(text: &str) -> ObjectSettings {
    match offsite(text).backend {
        Backend::Object(settings) => settings,
        other => panic!("not an object store: {other:?}"),
    }
}

fn s3_service(bucket: &str) -> ObjectService {
    ObjectService::S3 {
        bucket: bucket.into(),
        region: None,
        endpoint: None,
        allow_http: false,
        virtual_hosted_style: false,
        access_key_id: None,
        secret_access_key: None,
    }
}

#[test]
fn local_location_with_and_without_retention() {
    let text = location("type = \"local\"\npath = \"/srv/backups\"\nretention = \"90d\"\n");
    assert_eq!(
        offsite(&text),
        StorageLocation {
            name: "offsite".into(),
            backend: Backend::Local {
                path: PathBuf::from("/srv/backups")
            },
            retention: Some(Duration::from_secs(90 * DAY)),
        }
    );
    let plain = offsite(&location("type = \"local\"\npath = \"/srv/backups\"\n"));
    assert_eq!(plain.retention, None);
    assert_eq!(
        plain.local_path(),
        Some(std::path::Path::new("/srv/backups"))
    );
}

#[test]
fn s3_every_key_is_read() {
    let text = s3(
        "region = \"eu-west-1\"\nendpoint = \"http://127.0.0.1:9000\"\n\
                   allow_http = true\nvirtual_hosted_style = true\n\
                   access_key_id_file = \"${CREDENTIALS_DIRECTORY}/s3-key-id\"\n\
                   secret_access_key_env = \"S3_SECRET\"\nprefix = \"mongo/prod\"\n\
                   part_size = \"64MiB\"\nca_file = \"/etc/mongo-backupd/minio-ca.pem\"\n\
                   timeout = \"2m\"\nretention = \"12w\"\n",
    );
    assert_eq!(
        offsite(&text),
        StorageLocation {
            name: "offsite".into(),
            backend: Backend::Object(ObjectSettings {
                service: ObjectService::S3 {
                    bucket: "acme-backups".into(),
                    region: Some("eu-west-1".into()),
                    endpoint: Some("http://127.0.0.1:9000".into()),
                    allow_http: true,
                    virtual_hosted_style: true,
                    access_key_id: Some(SecretSource::File(
                        "${CREDENTIALS_DIRECTORY}/s3-key-id".into()
                    )),
                    secret_access_key: Some(SecretSource::Env("S3_SECRET".into())),
                },
                prefix: "mongo/prod/".into(),
                part_size: 64 * MIB,
                ca_file: Some(PathBuf::from("/etc/mongo-backupd/minio-ca.pem")),
                timeout: Duration::from_secs(120),
            }),
            retention: Some(Duration::from_secs(84 * DAY)),
        }
    );
    // The other form of each credential.
    let other = object(&s3(
        "access_key_id_env = \"S3_KEY_ID\"\nsecret_access_key_file = \"/etc/mongo-backupd/s3-secret\"\n",
    ));
    match other.service {
        ObjectService::S3 {
            access_key_id,
            secret_access_key,
            ..
        } => {
            assert_eq!(access_key_id, Some(SecretSource::Env("S3_KEY_ID".into())));
            assert_eq!(
                secret_access_key,
                Some(SecretSource::File("/etc/mongo-backupd/s3-secret".into()))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn object_store_defaults() {
    let location = offsite(&s3(""));
    assert_eq!(
        location.backend,
        Backend::Object(ObjectSettings::new(s3_service("acme-backups")))
    );
    assert_eq!(location.retention, None);
    let settings = object(&s3(""));
    assert_eq!(settings.prefix, "");
    assert_eq!(settings.part_size, 16 * MIB);
    assert_eq!(settings.ca_file, None);
    assert_eq!(settings.timeout, Duration::from_secs(300));
    assert_eq!(settings.service.type_name(), "s3");
}

#[test]
fn azure_every_key_is_read() {
    let settings = object(&azure(
        "endpoint = \"http://127.0.0.1:10000/devstoreaccount1\"\nallow_http = true\n\
         access_key_file = \"/etc/mongo-backupd/azure-key\"\nprefix = \"prod/\"\n\
         part_size = \"8MiB\"\nca_file = \"/etc/ssl/azurite.pem\"\ntimeout = \"30s\"\n",
    ));
    assert_eq!(
        settings,
        ObjectSettings {
            service: ObjectService::Azure {
                account: "acmebackups".into(),
                container: "mongo".into(),
                endpoint: Some("http://127.0.0.1:10000/devstoreaccount1".into()),
                allow_http: true,
                access_key: Some(SecretSource::File("/etc/mongo-backupd/azure-key".into())),
            },
            prefix: "prod/".into(),
            part_size: 8 * MIB,
            ca_file: Some(PathBuf::from("/etc/ssl/azurite.pem")),
            timeout: Duration::from_secs(30),
        }
    );
    let defaults = object(&azure("access_key_env = \"AZURE_STORAGE_KEY\"\n"));
    assert_eq!(
        defaults,
        ObjectSettings::new(ObjectService::Azure {
            account: "acmebackups".into(),
            container: "mongo".into(),
            endpoint: None,
            allow_http: false,
            access_key: Some(SecretSource::Env("AZURE_STORAGE_KEY".into())),
        })
    );
    match object(&azure("")).service {
        ObjectService::Azure { access_key, .. } => assert_eq!(access_key, None),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gcs_every_key_is_read() {
    let settings = object(&gcs(
        "service_account_file = \"/etc/mongo-backupd/gcs.json\"\nprefix = \"a/b/c\"\n\
         part_size = 33554432\ntimeout = \"10m\"\nretention = \"1w\"\n",
    ));
    assert_eq!(
        settings,
        ObjectSettings {
            service: ObjectService::Gcs {
                bucket: "acme_backups".into(),
                service_account_file: Some(PathBuf::from("/etc/mongo-backupd/gcs.json")),
            },
            prefix: "a/b/c/".into(),
            part_size: 32 * MIB,
            ca_file: None,
            timeout: Duration::from_secs(600),
        }
    );
    assert_eq!(
        object(&gcs("")),
        ObjectSettings::new(ObjectService::Gcs {
            bucket: "acme_backups".into(),
            service_account_file: None,
        })
    );
}

#[test]
fn prefixes_are_normalised() {
    for (written, normalised) in [
        ("", ""),
        ("mongo", "mongo/"),
        ("mongo/", "mongo/"),
        ("a/b/c", "a/b/c/"),
        ("a.b/c..d/", "a.b/c..d/"),
    ] {
        let settings = object(&s3(&format!("prefix = {written:?}\n")));
        assert_eq!(settings.prefix, normalised, "prefix = {written:?}");
    }
}

#[test]
fn prefix_errors() {
    let cases = [
        ("/mongo", "storage.offsite.prefix: prefix \"/mongo\" must not start with \"/\" (hint: keys are relative to the bucket: prefix = \"mongo/\")"),
        ("/", "storage.offsite.prefix: prefix \"/\" must not start with \"/\" (hint: remove prefix to keep backups at the top of the bucket)"),
        ("a//b", "storage.offsite.prefix: prefix \"a//b\" has an empty segment (\"//\") (hint: object stores keep \"a//b\" and \"a/b\" apart; write each \"/\" once)"),
        ("a/../b", "storage.offsite.prefix: prefix \"a/../b\" contains a \".\" or \"..\" segment (hint: object keys have no relative paths; write the folder out, e.g. prefix = \"mongo-backupd/\")"),
        ("./a", "storage.offsite.prefix: prefix \"./a\" contains a \".\" or \"..\" segment (hint: object keys have no relative paths; write the folder out, e.g. prefix = \"mongo-backupd/\")"),
    ];
    for (prefix, rest) in cases {
        assert_eq!(
            the_error(&s3(&format!("prefix = {prefix:?}\n"))),
            at(4, 10, rest),
            "prefix = {prefix:?}"
        );
    }
    // Azure says "container".
    assert_eq!(
        the_error(&azure("prefix = \"/x\"\n")),
        at(5, 10, "storage.offsite.prefix: prefix \"/x\" must not start with \"/\" (hint: keys are relative to the container: prefix = \"x/\")")
    );
}

#[test]
fn part_size_forms() {
    for (written, bytes) in [
        ("\"5MiB\"", 5 * MIB),
        ("\"16MiB\"", 16 * MIB),
        ("\"1GiB\"", 1024 * MIB),
        ("\"5GiB\"", 5 * 1024 * MIB),
        ("\"8MB\"", 8_000_000),
        ("\"1GB\"", 1_000_000_000),
        ("\"5242880\"", 5 * MIB),
        ("5242880", 5 * MIB),
    ] {
        let settings = object(&s3(&format!("part_size = {written}\n")));
        assert_eq!(settings.part_size, bytes, "part_size = {written}");
    }
    // Below 5 MiB is fine where the service allows it: Azure, GCS and
    // S3-compatible services reached through an endpoint.
    assert_eq!(object(&azure("part_size = \"1MiB\"\n")).part_size, MIB);
    assert_eq!(object(&gcs("part_size = \"1MiB\"\n")).part_size, MIB);
    let minio = s3("endpoint = \"https://minio.internal:9000\"\npart_size = \"512KiB\"\n");
    assert_eq!(
        the_error(&minio),
        at(5, 13, "storage.offsite.part_size: part_size = \"512KiB\" is below the minimum of 1MiB (hint: parts are 1MiB to 5GiB; the default is 16MiB)")
    );
    let minio = s3("endpoint = \"https://minio.internal:9000\"\npart_size = \"2MiB\"\n");
    assert_eq!(object(&minio).part_size, 2 * MIB);
}

#[test]
fn part_size_errors() {
    let aws = "(hint: AWS rejects multipart upload parts under 5MiB (but the last); use at least \
               part_size = \"5MiB\" (the default is 16MiB); S3-compatible services set with \
               endpoint may allow smaller parts)";
    let size_hint = "(hint: a whole number of bytes, or with a unit: KiB, MiB, GiB (powers of \
                     1024) or KB, MB, GB (powers of 1000), e.g. \"16MiB\")";
    let range = "(hint: parts are 1MiB to 5GiB; the default is 16MiB)";
    let cases = [
        (
            "\"4MiB\"",
            format!("part_size = \"4MiB\" is below 5MiB, the smallest part AWS S3 accepts {aws}"),
        ),
        (
            "\"5MB\"",
            format!("part_size = \"5MB\" is below 5MiB, the smallest part AWS S3 accepts {aws}"),
        ),
        (
            "1048576",
            format!("part_size = 1048576 is below 5MiB, the smallest part AWS S3 accepts {aws}"),
        ),
        (
            "\"6GiB\"",
            format!("part_size = \"6GiB\" is above the maximum of 5GiB {range}"),
        ),
        (
            "\"16M\"",
            format!("invalid size \"16M\": \"M\" is ambiguous: write MiB (powers of 1024) or MB (powers of 1000) {size_hint}"),
        ),
        (
            "\"1.5GiB\"",
            format!("invalid size \"1.5GiB\": fractions are not supported (write \"1536MiB\", not \"1.5GiB\") {size_hint}"),
        ),
        ("-1", format!("part_size = -1 is negative {size_hint}")),
        ("true", format!("expected a size, found boolean {size_hint}")),
    ];
    for (written, rest) in cases {
        assert_eq!(
            the_error(&s3(&format!("part_size = {written}\n"))),
            at(4, 13, &format!("storage.offsite.part_size: {rest}")),
            "part_size = {written}"
        );
    }
    assert_eq!(
        the_error(&gcs("part_size = \"512KiB\"\n")),
        at(4, 13, &format!("storage.offsite.part_size: part_size = \"512KiB\" is below the minimum of 1MiB {range}"))
    );
}

#[test]
fn timeout_retention_and_paths() {
    let text = s3("timeout = \"0s\"\nretention = \"0d\"\nca_file = \"ca.pem\"\n");
    assert_eq!(
        errors(&text),
        vec![
            at(4, 11, "storage.offsite.timeout: timeout must be at least 1s (hint: the longest one request to the object store may take, e.g. timeout = \"5m\")"),
            at(5, 13, "storage.offsite.retention: retention must be longer than 0 (hint: a retention of 0 would delete every backup at this location as soon as it is made)"),
            at(6, 11, "storage.offsite.ca_file: ca_file must be an absolute path, found \"ca.pem\" (hint: start it with \"/\")"),
        ]
    );
    // Retention takes the job's units: h, d and w.
    assert_eq!(
        the_error(&location("type = \"local\"\npath = \"/b\"\nretention = \"90m\"\n")),
        at(4, 13, "storage.offsite.retention: retention does not take the unit \"m\" in \"90m\" (hint: use w, d or h)")
    );
    assert_eq!(
        the_error(&gcs("service_account_file = \"key.json\"\n")),
        at(4, 24, "storage.offsite.service_account_file: service_account_file must be an absolute path, found \"key.json\" (hint: start it with \"/\")")
    );
}

#[test]
fn storage_type_errors() {
    let text = "[storage.a]\ntype = \"S3\"\nbucket = \"acme-backups\"\n\n\
                [storage.b]\ntype = \"minio\"\nbucket = \"Bad\"\n\n\
                [storage.c]\ntype = \"tape\"\npath = \"/b\"\n\n\
                [storage.d]\nbucket = \"acme-backups\"\nregion = \"eu-west-1\"\n";
    assert_eq!(
        errors(text),
        vec![
            at(2, 8, "storage.a.type: invalid storage type \"S3\" (expected local, s3, azure or gcs) (hint: did you mean \"s3\"?)"),
            at(6, 8, "storage.b.type: invalid storage type \"minio\" (expected local, s3, azure or gcs) (hint: did you mean \"s3\"? S3-compatible services are type = \"s3\" with their endpoint)"),
            // The guessed type's checks still run.
            at(7, 10, "storage.b.bucket: \"Bad\" is not a valid S3 bucket name: it has uppercase letters (hint: S3 bucket names are 3-63 lowercase letters, digits, \".\" and \"-\", starting and ending with a letter or digit, e.g. bucket = \"acme-mongo-backups\")"),
            at(10, 8, "storage.c.type: invalid storage type \"tape\" (expected local, s3, azure or gcs) (hint: local is a directory (a mounted network share too); s3, azure and gcs are object stores)"),
            // A missing type is guessed from the keys for the hint.
            at(13, 1, "storage.d.type: missing required key \"type\" (hint: type = \"s3\")"),
        ]
    );
    // Keys that fit no single type: all four are offered.
    assert_eq!(
        the_error("[storage.e]\nbucket = \"acme-backups\"\n"),
        at(1, 1, "storage.e.type: missing required key \"type\" (hint: type = \"local\", \"s3\", \"azure\" or \"gcs\")")
    );
}

#[test]
fn keys_of_another_type_name_the_type() {
    let text = "[storage.a]\ntype = \"local\"\npath = \"/b\"\nbucket = \"x\"\n\n\
                [storage.b]\ntype = \"s3\"\nbucket = \"acme-backups\"\npath = \"/b\"\n\
                container = \"c\"\naccess_key_file = \"/k\"\n\n\
                [storage.c]\ntype = \"azure\"\naccount = \"acme\"\ncontainer = \"mongo\"\n\
                bucket = \"x\"\nallow_htp = true\n";
    assert_eq!(
        errors(text),
        vec![
            at(4, 1, "storage.a.bucket: unknown key \"bucket\" (hint: \"bucket\" is not a key of a local location (s3 and gcs locations have it); a local location is the directory in path)"),
            at(9, 1, "storage.b.path: unknown key \"path\" (hint: \"path\" is not a key of an s3 location (local locations have it); to keep backups under a folder of the bucket, use prefix)"),
            at(10, 1, "storage.b.container: unknown key \"container\" (hint: \"container\" is not a key of an s3 location (azure locations have it); name the bucket with bucket)"),
            at(11, 1, "storage.b.access_key_file: unknown key \"access_key_file\" (hint: \"access_key_file\" is not a key of an s3 location (azure locations have it); s3 credentials are access_key_id_file and secret_access_key_file (or the _env forms))"),
            at(17, 1, "storage.c.bucket: unknown key \"bucket\" (hint: \"bucket\" is not a key of an azure location (s3 and gcs locations have it); name the container with container (and the storage account with account))"),
            at(18, 1, "storage.c.allow_htp: unknown key \"allow_htp\" (hint: did you mean \"allow_http\"?)"),
        ]
    );
    // Keys no type has: the usual hint with this type's keys.
    assert_eq!(
        the_error(&gcs("colour = \"blue\"\n")),
        at(4, 1, "storage.offsite.colour: unknown key \"colour\" (hint: valid keys here: type, bucket, service_account_file, prefix, part_size, ca_file, timeout, retention)")
    );
}

#[test]
fn literal_secrets_are_refused_and_never_shown() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let key_id = "AKIAIOSFODNN7EXAMPLE";
    let text = s3(&format!(
        "access_key_id = \"{key_id}\"\nsecret_access_key = \"{secret}\"\n"
    ));
    let all = errors(&text);
    assert_eq!(
        all,
        vec![
            at(4, 1, "storage.offsite.access_key_id: access key ids are not written in the configuration file (hint: put it in a file readable only by the daemon and set access_key_id_file, or set access_key_id_env)"),
            at(5, 1, "storage.offsite.secret_access_key: secret access keys are not written in the configuration file (hint: put it in a file readable only by the daemon and set secret_access_key_file, or set secret_access_key_env)"),
        ]
    );
    // With the other half set properly, the literal is the only error: the
    // incomplete pair it leaves is the same mistake.
    let text = s3(&format!(
        "access_key_id_file = \"/etc/mongo-backupd/s3-id\"\nsecret_access_key = \"{secret}\"\n"
    ));
    let error = the_error(&text);
    assert!(
        error.starts_with(&at(
            5,
            1,
            "storage.offsite.secret_access_key: secret access keys are not written"
        )),
        "{error}"
    );

    let text = azure(&format!("access_key = \"{secret}\"\n"));
    let error = the_error(&text);
    assert_eq!(
        error,
        at(5, 1, "storage.offsite.access_key: storage account keys are not written in the configuration file (hint: put it in a file readable only by the daemon and set access_key_file, or set access_key_env)")
    );
    // Not even in a table whose type cannot be told, or of another type.
    let text = format!(
        "[storage.a]\ntype = \"tape\"\naccount = \"acme\"\nsecret_access_key = \"{secret}\"\n\n\
         [storage.b]\ntype = \"gcs\"\nbucket = \"acme\"\nsecret_access_key = \"{secret}\"\n"
    );
    let all = errors(&text);
    assert_eq!(all.len(), 3, "{all:#?}");
    for error in all.iter().chain([&error]) {
        assert!(
            !error.contains(secret) && !error.contains(key_id),
            "{error}"
        );
    }
    assert!(
        all[1].starts_with(&at(
            4,
            1,
            "storage.a.secret_access_key: secret access keys are not written"
        )),
        "{}",
        all[1]
    );
    assert_eq!(
        all[2],
        at(9, 1, "storage.b.secret_access_key: unknown key \"secret_access_key\" (hint: \"secret_access_key\" is not a key of a gcs location; gcs credentials come from service_account_file)")
    );
}

#[test]
fn s3_credential_pairs() {
    let both = "(hint: set access_key_id_file (a file holding the access key id) or \
                access_key_id_env (an environment variable holding it), not both)";
    let text = s3("access_key_id_file = \"/k\"\naccess_key_id_env = \"K\"\n\
                   secret_access_key_env = \"S\"\n");
    assert_eq!(
        the_error(&text),
        at(5, 1, &format!("storage.offsite.access_key_id_env: access_key_id_file and access_key_id_env are both set {both}"))
    );
    let half = "an access key is its id and its secret";
    let error = the_error(&s3("access_key_id_env = \"AWS_KEY_ID\"\n"));
    assert_eq!(
        error,
        at(4, 1, &format!("storage.offsite.access_key_id_env: access_key_id_env is set but neither secret_access_key_file nor secret_access_key_env (hint: {half}: set secret_access_key_file or secret_access_key_env too, or remove access_key_id_env to use the platform's credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, web identity, ECS or EC2 instance role))"))
    );
    let error = the_error(&s3("secret_access_key_file = \"/k\"\n"));
    assert!(
        error.starts_with(&at(4, 1, "storage.offsite.secret_access_key_file: secret_access_key_file is set but neither access_key_id_file nor access_key_id_env")),
        "{error}"
    );
    let text = s3("access_key_id_env = \"$KEY\"\nsecret_access_key_file = \"secret\"\n");
    assert_eq!(
        errors(&text),
        vec![
            at(4, 21, "storage.offsite.access_key_id_env: \"$KEY\" is not an environment variable name (hint: write the name without $ or braces: access_key_id_env = \"KEY\")"),
            at(5, 26, "storage.offsite.secret_access_key_file: secret_access_key_file must be an absolute path, found \"secret\" (hint: e.g. \"/etc/mongo-backupd/secret-access-key\" or \"${CREDENTIALS_DIRECTORY}/secret-access-key\")"),
        ]
    );
    let text = azure("access_key_file = \"/k\"\naccess_key_env = \"K\"\n");
    assert_eq!(
        the_error(&text),
        at(6, 1, "storage.offsite.access_key_env: access_key_file and access_key_env are both set (hint: set access_key_file (a file holding the storage account key) or access_key_env (an environment variable holding it), not both)")
    );
}

#[test]
fn http_endpoints_need_allow_http() {
    let hint = "(hint: use https://, or set allow_http = true if the service runs on this \
                machine or a network you trust (e.g. a local MinIO or Azurite))";
    assert_eq!(
        the_error(&s3("endpoint = \"http://minio.internal:9000\"\n")),
        at(4, 12, &format!("storage.offsite.endpoint: endpoint \"http://minio.internal:9000\" uses plain http://: the credentials and the backups would cross the network unencrypted {hint}"))
    );
    assert_eq!(
        the_error(&azure("endpoint = \"http://127.0.0.1:10000/devstoreaccount1\"\nallow_http = false\n")),
        at(5, 12, &format!("storage.offsite.endpoint: endpoint \"http://127.0.0.1:10000/devstoreaccount1\" uses plain http://: the credentials and the backups would cross the network unencrypted {hint}"))
    );
    // allow_http with HTTPS, or without an endpoint, changes nothing.
    parse_ok(&s3(
        "endpoint = \"https://minio.internal:9000\"\nallow_http = true\n",
    ));
    parse_ok(&s3("allow_http = true\n"));
    // A broken allow_http is reported on its own.
    assert_eq!(
        the_error(&s3("endpoint = \"http://minio:9000\"\nallow_http = \"yes\"\n")),
        at(5, 14, "storage.offsite.allow_http: expected boolean, found string (hint: write allow_http = true or allow_http = false, without quotes)")
    );
}

#[test]
fn endpoint_errors() {
    let example = "(hint: e.g. endpoint = \"https://minio.internal:9000\")";
    let cases = [
        (
            "minio.internal:9000",
            "endpoint \"minio.internal:9000\" has no scheme (hint: write the URL: endpoint = \"https://minio.internal:9000\")".to_string(),
        ),
        (
            "s3://bucket",
            format!("endpoint must be an http:// or https:// URL, found \"s3://bucket\" {example}"),
        ),
        (
            "https://minio:9000/?x=1",
            "endpoint \"https://minio:9000/?x=1\" has a query or fragment (hint: give the scheme, host, port and path only)".to_string(),
        ),
        ("https://", format!("endpoint \"https://\" has no host {example}")),
        (
            "https://minio:0",
            format!("endpoint \"https://minio:0\" has an invalid port \"0\" {example}"),
        ),
        ("", format!("endpoint is empty {example}")),
    ];
    for (endpoint, rest) in cases {
        assert_eq!(
            the_error(&s3(&format!("endpoint = {endpoint:?}\n"))),
            at(4, 12, &format!("storage.offsite.endpoint: {rest}")),
            "endpoint = {endpoint:?}"
        );
    }
    let error = the_error(&s3("endpoint = \"https://admin:hunter2@minio:9000\"\n"));
    assert!(!error.contains("hunter2"), "{error}");
    assert!(
        error.starts_with(&at(
            4,
            12,
            "storage.offsite.endpoint: endpoint must not contain a user name or password"
        )),
        "{error}"
    );
}

#[test]
fn region_errors() {
    assert_eq!(
        the_error(&s3("region = \"https://s3.eu-west-1.amazonaws.com\"\n")),
        at(4, 10, "storage.offsite.region: region must be a region name, not a URL: \"https://s3.eu-west-1.amazonaws.com\" (hint: set the URL with endpoint, e.g. region = \"eu-west-1\")")
    );
    assert_eq!(
        the_error(&s3("region = \"\"\n")),
        at(4, 10, "storage.offsite.region: region is empty (hint: remove region for the default (us-east-1), or name one, e.g. region = \"eu-west-1\")")
    );
}

#[test]
fn bucket_account_and_container_names() {
    let s3_rules = "(hint: S3 bucket names are 3-63 lowercase letters, digits, \".\" and \"-\", \
                    starting and ending with a letter or digit, e.g. bucket = \"acme-mongo-backups\")";
    let bucket = |name: &str| the_error(&location(&format!("type = \"s3\"\nbucket = {name:?}\n")));
    assert_eq!(
        bucket("my_bucket"),
        at(3, 10, &format!("storage.offsite.bucket: \"my_bucket\" is not a valid S3 bucket name: it contains \"_\" {s3_rules}"))
    );
    assert_eq!(
        bucket("ab"),
        at(3, 10, &format!("storage.offsite.bucket: \"ab\" is not a valid S3 bucket name: it is 2 characters long, not 3 to 63 {s3_rules}"))
    );
    assert_eq!(
        bucket("backups-"),
        at(3, 10, &format!("storage.offsite.bucket: \"backups-\" is not a valid S3 bucket name: it must start and end with a letter or digit {s3_rules}"))
    );
    assert_eq!(
        bucket(""),
        at(
            3,
            10,
            &format!("storage.offsite.bucket: bucket is empty {s3_rules}")
        )
    );

    let text = location(
        "type = \"azure\"\naccount = \"acme.blob.core.windows.net\"\ncontainer = \"Mongo--x\"\n",
    );
    assert_eq!(
        errors(&text),
        vec![
            at(3, 11, "storage.offsite.account: \"acme.blob.core.windows.net\" is not a valid Azure storage account name: it contains \".\" (give only the account name; set endpoint for another URL) (hint: storage account names are 3-24 lowercase letters and digits: the NAME of NAME.blob.core.windows.net)"),
            at(4, 13, "storage.offsite.container: \"Mongo--x\" is not a valid Azure container name: it has uppercase letters (hint: container names are 3-63 lowercase letters, digits and single \"-\", starting and ending with a letter or digit, e.g. container = \"mongo-backups\")"),
        ]
    );
    let error = the_error(&location(
        "type = \"azure\"\naccount = \"acme\"\ncontainer = \"mongo--x\"\n",
    ));
    assert!(
        error.contains("is not a valid Azure container name: it contains \"--\""),
        "{error}"
    );

    let error = the_error(&location("type = \"gcs\"\nbucket = \"Acme\"\n"));
    assert!(
        error.starts_with(&at(3, 10, "storage.offsite.bucket: \"Acme\" is not a valid GCS bucket name: it has uppercase letters (hint: GCS bucket names are 3-63")),
        "{error}"
    );
    // Dotted GCS names may be longer.
    let long = format!("{}.{}.example.com", "a".repeat(60), "b".repeat(60));
    parse_ok(&location(&format!("type = \"gcs\"\nbucket = {long:?}\n")));
}

#[test]
fn required_keys_per_type() {
    let text = "[storage.a]\ntype = \"s3\"\n\n[storage.b]\ntype = \"azure\"\n\n\
                [storage.c]\ntype = \"gcs\"\n\n[storage.d]\ntype = \"local\"\n";
    let all = errors(text);
    let heads: Vec<&str> = all
        .iter()
        .map(|e| e.split(" (hint:").next().unwrap())
        .collect();
    assert_eq!(
        heads,
        vec![
            at(1, 1, "storage.a.bucket: missing required key \"bucket\""),
            at(4, 1, "storage.b.account: missing required key \"account\""),
            at(
                4,
                1,
                "storage.b.container: missing required key \"container\""
            ),
            at(7, 1, "storage.c.bucket: missing required key \"bucket\""),
            at(10, 1, "storage.d.path: missing required key \"path\""),
        ]
    );
}

// ---------------------------------------------------------------------------
// Jobs: storage, copies, encryption.
// ---------------------------------------------------------------------------

/// BASE (lines 1-7), an s3 location `offsite` and a local `nas` (lines
/// 8-15), `[jobs.prod-full]` on line 16 and `body` from line 17.
fn job_text(body: &str) -> String {
    format!(
        "{BASE}[storage.offsite]\ntype = \"s3\"\nbucket = \"acme-backups\"\n\n\
         [storage.nas]\ntype = \"local\"\npath = \"/mnt/nas\"\n\n[jobs.prod-full]\n{body}"
    )
}

/// A valid manual job on `storage` (lines 17-19) with `extra` from line 20.
fn manual_job(storage: &str, extra: &str) -> String {
    job_text(&format!(
        "source = \"prod\"\nstorage = \"{storage}\"\nkind = \"manual\"\n{extra}"
    ))
}

fn job_of(text: &str) -> crate::config::Job {
    parse_ok(text)
        .jobs
        .remove("prod-full")
        .expect("[jobs.prod-full]")
}

#[test]
fn copies_are_read() {
    let job = job_of(&manual_job("local", "copies = [\"offsite\", \"nas\"]\n"));
    assert_eq!(job.storage, "local");
    assert_eq!(job.copies, vec!["offsite".to_string(), "nas".to_string()]);
    assert_eq!(job.encryption, None);
    assert!(job_of(&manual_job("local", "")).copies.is_empty());
    assert!(job_of(&manual_job("local", "copies = []\n"))
        .copies
        .is_empty());
}

#[test]
fn object_primary_storage_is_refused() {
    assert_eq!(
        the_error(&manual_job("offsite", "")),
        at(18, 11, "jobs.prod-full.storage: storage \"offsite\" is an s3 location; the primary storage of a job must be a local directory (its backups are written and committed there first) (hint: object stores can receive copies: copies = [\"offsite\"])")
    );
    // A local location other than "local" is fine.
    assert_eq!(job_of(&manual_job("nas", "")).storage, "nas");
}

#[test]
fn copies_errors() {
    let text = manual_job(
        "local",
        "copies = [\"ofsite\", \"local\", \"nas\", \"nas\", \"tape\", 3]\n",
    );
    assert_eq!(
        errors(&text),
        vec![
            at(20, 11, "jobs.prod-full.copies: storage \"ofsite\" is not defined (defined: \"local\", \"offsite\", \"nas\") (hint: did you mean \"offsite\"?)"),
            at(20, 21, "jobs.prod-full.copies: \"local\" is this job's storage already (hint: copies are further locations each backup is copied to once it is complete in storage; list only other ones)"),
            at(20, 37, "jobs.prod-full.copies: \"nas\" is listed twice in copies (hint: remove the second one)"),
            at(20, 44, "jobs.prod-full.copies: storage \"tape\" is not defined (defined: \"local\", \"offsite\", \"nas\") (hint: use one of the defined names or add a [storage.tape] table)"),
            at(20, 52, "jobs.prod-full.copies: expected string, found integer"),
        ]
    );
    assert_eq!(
        the_error(&manual_job("local", "copies = \"offsite\"\n")),
        at(20, 10, "jobs.prod-full.copies: expected array of strings, found string (hint: write a list: copies = [\"offsite\"])")
    );
}

/// A fresh X25519 recipient, as age-keygen prints it.
fn new_recipient() -> String {
    age::x25519::Identity::generate().to_public().to_string()
}

/// A fresh secret key (identity), as age-keygen writes it.
fn new_secret_key() -> String {
    use age::secrecy::ExposeSecret;
    age::x25519::Identity::generate()
        .to_string()
        .expose_secret()
        .to_string()
}

const SECRET_KEY: &str = "this is a secret key (identity); the daemon needs only the public \
                          recipient: age-keygen -y FILE prints it (hint: keep the secret key off \
                          this server: anyone who can read it can decrypt every backup)";
const RECIPIENT_HINT: &str = "(hint: an X25519 age recipient is \"age1\" and 58 more characters, \
                              as age-keygen prints it (age-keygen -y KEYFILE prints it again))";

#[test]
fn encrypt_to_is_read() {
    let (a, b) = (new_recipient(), new_recipient());
    assert_eq!(a.len(), 62);
    let job = job_of(&manual_job(
        "local",
        &format!("encrypt_to = [\"{a}\", \"{b}\", \"{a}\"]\n"),
    ));
    assert_eq!(
        job.encryption,
        Some(Encryption {
            recipients: vec![a.clone(), b.clone()]
        })
    );
    // Written in upper case (Bech32 allows it), stored as age prints it.
    let job = job_of(&manual_job(
        "local",
        &format!("encrypt_to = [\"{}\"]\n", a.to_uppercase()),
    ));
    assert_eq!(job.encryption.unwrap().recipients, vec![a]);
}

#[test]
fn encrypt_to_errors() {
    let secret = new_secret_key();
    assert!(secret.starts_with("AGE-SECRET-KEY-1"));
    let good = new_recipient();
    let plugin = "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t";
    let text = manual_job(
        "local",
        &format!(
            "encrypt_to = [\n  \"{good}\",\n  \"{secret}\",\n  \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB1ydhWhvkiW\",\n  \"age1notakey\",\n  \"{plugin}\",\n]\n"
        ),
    );
    let all = errors(&text);
    assert_eq!(
        all,
        vec![
            at(22, 3, &format!("jobs.prod-full.encrypt_to: {SECRET_KEY}")),
            at(23, 3, "jobs.prod-full.encrypt_to: ssh-ed25519 keys are not supported as recipients (hint: use an X25519 age key: create one with age-keygen -o key.txt away from this server and give its recipient (age1...))"),
            at(24, 3, &format!("jobs.prod-full.encrypt_to: invalid age recipient \"age1notakey\": invalid Bech32 encoding {RECIPIENT_HINT}")),
            at(25, 3, &format!("jobs.prod-full.encrypt_to: \"{plugin}\" is an age plugin recipient, which is not supported {RECIPIENT_HINT}")),
        ]
    );
    let secret_body = secret.trim_start_matches("AGE-SECRET-KEY-1");
    for error in &all {
        assert!(!error.contains(secret_body), "{error}");
        assert!(!error.contains(&secret.to_lowercase()[16..]), "{error}");
    }
    // Even in lower case, or mangled.
    let mangled = secret.to_lowercase().replace("age-", "");
    let error = the_error(&manual_job(
        "local",
        &format!("encrypt_to = [\"{mangled}\"]\n"),
    ));
    assert_eq!(
        error,
        at(20, 15, &format!("jobs.prod-full.encrypt_to: {SECRET_KEY}"))
    );

    assert_eq!(
        the_error(&manual_job("local", "encrypt_to = []\n")),
        at(20, 14, "jobs.prod-full.encrypt_to: encrypt_to is empty (hint: list the age recipients, e.g. encrypt_to = [\"age1...\"], or remove encrypt_to to store backups unencrypted)")
    );
}

#[test]
fn encrypt_to_file_with_comments_and_the_union() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recipients.txt");
    let (a, b, c) = (new_recipient(), new_recipient(), new_recipient());
    std::fs::write(
        &file,
        format!(
            "# ops team\n{a}\n\n   # the escrow key\n  {b}  \r\n{c}\n# {}\n",
            new_recipient()
        ),
    )
    .unwrap();
    let job = job_of(&manual_job(
        "local",
        &format!("encrypt_to_file = {:?}\n", file.display().to_string()),
    ));
    assert_eq!(
        job.encryption.unwrap().recipients,
        vec![a.clone(), b.clone(), c.clone()]
    );

    // Both keys: the union, each recipient once, encrypt_to first.
    let d = new_recipient();
    let job = job_of(&manual_job(
        "local",
        &format!(
            "encrypt_to = [\"{d}\", \"{b}\"]\nencrypt_to_file = {:?}\n",
            file.display().to_string()
        ),
    ));
    assert_eq!(job.encryption.unwrap().recipients, vec![d, b, a, c]);

    // A file with no recipients is fine while encrypt_to has some.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# nobody yet\n\n").unwrap();
    let e = new_recipient();
    let job = job_of(&manual_job(
        "local",
        &format!(
            "encrypt_to = [\"{e}\"]\nencrypt_to_file = {:?}\n",
            empty.display().to_string()
        ),
    ));
    assert_eq!(job.encryption.unwrap().recipients, vec![e]);
}

#[test]
fn encrypt_to_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let shown = |p: &std::path::Path| p.display().to_string();

    // Bad lines are reported by line number, at the key's value.
    let file = dir.path().join("recipients.txt");
    let secret = new_secret_key();
    std::fs::write(
        &file,
        format!(
            "# created: 2025-06-01T00:00:00Z\n# public key: {}\n{}\n{secret}\nage1bogus\n",
            new_recipient(),
            new_recipient()
        ),
    )
    .unwrap();
    let text = manual_job("local", &format!("encrypt_to_file = {:?}\n", shown(&file)));
    let all = errors(&text);
    assert_eq!(
        all,
        vec![
            at(20, 19, &format!("jobs.prod-full.encrypt_to_file: {} line 4: {SECRET_KEY}", shown(&file))),
            at(20, 19, &format!("jobs.prod-full.encrypt_to_file: {} line 5: invalid age recipient \"age1bogus\": invalid Bech32 encoding {RECIPIENT_HINT}", shown(&file))),
        ]
    );
    for error in &all {
        assert!(!error.contains(&secret[16..]), "{error}");
    }

    // Missing.
    let missing = dir.path().join("absent.txt");
    let error = the_error(&manual_job(
        "local",
        &format!("encrypt_to_file = {:?}\n", shown(&missing)),
    ));
    let not_found = std::io::Error::from(std::io::ErrorKind::NotFound);
    let io = std::fs::read(&missing).unwrap_err();
    assert_eq!(io.kind(), not_found.kind());
    assert_eq!(
        error,
        at(20, 19, &format!("jobs.prod-full.encrypt_to_file: cannot read {}: {io} (hint: create it with one age recipient (age1...) per line, readable by the daemon's user; it is read at start and on every reload)", shown(&missing)))
    );

    // No recipients at all.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "# to be filled in\n\n").unwrap();
    assert_eq!(
        the_error(&manual_job("local", &format!("encrypt_to_file = {:?}\n", shown(&empty)))),
        at(20, 19, &format!("jobs.prod-full.encrypt_to_file: {} has no recipients (hint: one age recipient (age1...) per line; blank lines and lines starting with # are ignored)", shown(&empty)))
    );

    // Relative.
    assert_eq!(
        the_error(&manual_job("local", "encrypt_to_file = \"recipients.txt\"\n")),
        at(20, 19, "jobs.prod-full.encrypt_to_file: encrypt_to_file must be an absolute path, found \"recipients.txt\" (hint: start it with \"/\")")
    );
}
