//! `[http]` and the control socket settings of `[daemon]`: every setting
//! read, the defaults, and each error with its exact text.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::{at, errors, parse_ok, the_error, BASE};
use crate::config::{DaemonSettings, HttpSettings, DEFAULT_CONTROL_SOCKET};

const TOKENS: &str = "token_file = \"/etc/mongo-backupd/api-tokens\"\n";
const LISTEN_HINT: &str = "(hint: write IP:PORT, e.g. \"127.0.0.1:9187\" or \"[::1]:9187\")";
const GROUP_HINT: &str = "(hint: a group name starts with a letter or \"_\" and contains only \
                          letters, digits, \"_\" and \"-\", e.g. control_group = \
                          \"mongo-backupd-admins\")";
const GID_HINT: &str =
    "(hint: use the group's name, not its GID, e.g. control_group = \"mongo-backupd-admins\")";

/// `[http]` on line 1, `body` from line 2.
fn http(body: &str) -> String {
    format!("[http]\n{body}")
}

/// `[http]` with a token file (line 2) and `extra` from line 3.
fn with_tokens(extra: &str) -> String {
    http(&format!("{TOKENS}{extra}"))
}

/// The HTTP settings of a valid configuration with the API on.
fn settings(text: &str) -> HttpSettings {
    parse_ok(text).http.expect("the API is enabled")
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// `[daemon]` on line 1, `body` from line 2.
fn daemon(body: &str) -> String {
    format!("[daemon]\n{body}")
}

#[test]
fn every_http_setting_is_read() {
    let config = parse_ok(&format!(
        "{BASE}[http]\nenabled = true\nlisten = \"127.0.0.1:8443\"\n\
         token_file = \"${{CREDENTIALS_DIRECTORY}}/api-tokens\"\n\
         tls_cert = \"/etc/mongo-backupd/tls/cert.pem\"\ntls_key = \"/etc/mongo-backupd/tls/key.pem\"\n\
         metrics_public = true\nmutations_per_minute = 30\nmax_body_bytes = 1048576\n"
    ));
    let expected = HttpSettings {
        listen: addr("127.0.0.1:8443"),
        token_file: PathBuf::from("${CREDENTIALS_DIRECTORY}/api-tokens"),
        tls_cert: Some(PathBuf::from("/etc/mongo-backupd/tls/cert.pem")),
        tls_key: Some(PathBuf::from("/etc/mongo-backupd/tls/key.pem")),
        metrics_public: true,
        mutations_per_minute: 30,
        max_body_bytes: 1_048_576,
    };
    assert_eq!(config.http, Some(expected));
    // The rest of the file is unaffected.
    assert_eq!(config.sources.len(), 1);
    assert_eq!(config.storage.len(), 1);
}

#[test]
fn http_defaults() {
    assert_eq!(parse_ok("").http, None);
    assert_eq!(parse_ok(BASE).http, None);

    let expected = HttpSettings {
        listen: addr(HttpSettings::DEFAULT_LISTEN),
        token_file: PathBuf::from("/etc/mongo-backupd/api-tokens"),
        tls_cert: None,
        tls_key: None,
        metrics_public: false,
        mutations_per_minute: 5,
        max_body_bytes: 65_536,
    };
    assert_eq!(expected.listen, addr("127.0.0.1:9187"));
    // The table's presence turns the API on.
    assert_eq!(settings(&with_tokens("")), expected);
    assert_eq!(settings(&with_tokens("enabled = true\n")), expected);
    // Inline and dotted tables are tables too.
    assert_eq!(
        settings("http = { token_file = \"/etc/mongo-backupd/api-tokens\" }\n"),
        expected
    );
    assert_eq!(
        settings("http.token_file = \"/etc/mongo-backupd/api-tokens\"\n"),
        expected
    );
    // The limits' bounds are allowed.
    let low = settings(&with_tokens(
        "mutations_per_minute = 1\nmax_body_bytes = 1024\n",
    ));
    assert_eq!((low.mutations_per_minute, low.max_body_bytes), (1, 1024));
    let high = settings(&with_tokens(
        "mutations_per_minute = 1000\nmax_body_bytes = 10485760\n",
    ));
    assert_eq!(
        (high.mutations_per_minute, high.max_body_bytes),
        (1000, 10_485_760)
    );
    assert!(!settings(&with_tokens("metrics_public = false\n")).metrics_public);
}

#[test]
fn listen_forms_are_accepted() {
    for (written, expected) in [
        ("127.0.0.1:9187", "127.0.0.1:9187"),
        ("0.0.0.0:443", "0.0.0.0:443"),
        ("192.168.10.5:9187", "192.168.10.5:9187"),
        ("[::1]:9187", "[::1]:9187"),
        ("[::]:9187", "[::]:9187"),
        ("[fe80::1%2]:9187", "[fe80::1%2]:9187"),
        ("127.0.0.1:0", "127.0.0.1:0"),
    ] {
        let http = settings(&with_tokens(&format!("listen = \"{written}\"\n")));
        assert_eq!(http.listen, addr(expected), "{written}");
    }
    // Plain HTTP on a public address is allowed (the daemon warns), and so
    // is TLS on loopback.
    let public = settings(&with_tokens("listen = \"0.0.0.0:9187\"\n"));
    assert_eq!(public.tls_cert, None);
}

#[test]
fn disabled_http_is_none_but_still_checked() {
    assert_eq!(parse_ok(&http("enabled = false\n")).http, None);
    assert_eq!(
        parse_ok(&with_tokens(
            "enabled = false\nlisten = \"0.0.0.0:9187\"\ntls_cert = \"/a.pem\"\ntls_key = \"/b.pem\"\n"
        ))
        .http,
        None
    );
    // No token file needed while off, but what is written must be right.
    assert_eq!(
        errors(&http(
            "enabled = false\nlisten = \"localhost:9187\"\nmutations_per_minute = 0\nbogus = 1\n"
        )),
        vec![
            at(3, 10, "http.listen: listen must be an IP address and port, found the host name \"localhost\" (hint: use an IP address, e.g. 127.0.0.1:9187)"),
            at(4, 24, "http.mutations_per_minute: mutations_per_minute = 0 is out of range 1-1000"),
            at(5, 1, "http.bogus: unknown key \"bogus\" (hint: valid keys here: enabled, listen, token_file, tls_cert, tls_key, metrics_public, mutations_per_minute, max_body_bytes)"),
        ]
    );
    assert_eq!(
        the_error(&http("enabled = \"no\"\n")),
        at(2, 11, "http.enabled: expected boolean, found string (hint: write enabled = true or enabled = false, without quotes)")
    );
}

#[test]
fn listen_errors() {
    let cases = [
        (
            "localhost:9187",
            "listen must be an IP address and port, found the host name \"localhost\" (hint: use an IP address, e.g. 127.0.0.1:9187)".to_string(),
        ),
        (
            "backup1.example.com:8080",
            "listen must be an IP address and port, found the host name \"backup1.example.com\" (hint: use an IP address, e.g. 127.0.0.1:8080)".to_string(),
        ),
        (
            "localhost",
            "listen must be an IP address and port, found the host name \"localhost\" (hint: use an IP address and add the port, e.g. 127.0.0.1:9187)".to_string(),
        ),
        (
            "127.0.0.1",
            "listen address \"127.0.0.1\" has no port (hint: add the port, e.g. \"127.0.0.1:9187\")".to_string(),
        ),
        (
            "127.0.0.1:",
            "listen address \"127.0.0.1:\" has no port (hint: add the port, e.g. \"127.0.0.1:9187\")".to_string(),
        ),
        (
            "::1",
            "listen address \"::1\" has no port (hint: add the port; IPv6 addresses go in brackets, e.g. \"[::1]:9187\")".to_string(),
        ),
        (
            ":9187",
            "listen address \":9187\" has no IP address (hint: use 127.0.0.1:9187 for this machine only, or 0.0.0.0:9187 for every address)".to_string(),
        ),
        (
            "127.0.0.1:70000",
            format!("listen address \"127.0.0.1:70000\": port 70000 is out of range 0-65535 {LISTEN_HINT}"),
        ),
        (
            "http://127.0.0.1:9187",
            "listen must be an IP address and port, not a URL: \"http://127.0.0.1:9187\" (hint: e.g. listen = \"127.0.0.1:9187\")".to_string(),
        ),
        (
            "127.0.0.1:http",
            format!("invalid listen address \"127.0.0.1:http\" {LISTEN_HINT}"),
        ),
        (
            "300.1.1.1:9187",
            format!("invalid listen address \"300.1.1.1:9187\" {LISTEN_HINT}"),
        ),
        ("", format!("listen is empty {LISTEN_HINT}")),
    ];
    for (written, rest) in cases {
        assert_eq!(
            the_error(&with_tokens(&format!("listen = \"{written}\"\n"))),
            at(3, 10, &format!("http.listen: {rest}")),
            "for {written:?}"
        );
    }
    assert_eq!(
        the_error(&with_tokens("listen = 9187\n")),
        at(3, 10, "http.listen: expected string, found integer (hint: write it in quotes: listen = \"9187\")")
    );
}

#[test]
fn token_file_errors() {
    assert_eq!(
        the_error(&format!("{BASE}[http]\nlisten = \"127.0.0.1:9187\"\n")),
        at(8, 1, "http.token_file: missing required key \"token_file\" (hint: the API needs a file of tokens, one \"NAME TOKEN\" per line, e.g. token_file = \"/etc/mongo-backupd/api-tokens\")")
    );
    let examples = "(hint: e.g. \"/etc/mongo-backupd/api-tokens\" or \
                    \"${CREDENTIALS_DIRECTORY}/api-tokens\")";
    let cases = [
        (
            "api-tokens",
            format!("token_file must be an absolute path, found \"api-tokens\" {examples}"),
        ),
        (
            "",
            "token_file is empty (hint: give the path of a file holding the API tokens)".to_string(),
        ),
        (
            "${CREDENTIALS_DIRECTORY/api-tokens",
            "\"${\" is not closed with \"}\" (hint: write ${VARIABLE}/file)".to_string(),
        ),
        (
            "${CREDENTIALS-DIR}/api-tokens",
            "\"${CREDENTIALS-DIR}\" is not a valid variable reference (hint: write ${VARIABLE} with letters, digits and \"_\")".to_string(),
        ),
    ];
    for (written, rest) in cases {
        assert_eq!(
            the_error(&http(&format!("token_file = \"{written}\"\n"))),
            at(2, 14, &format!("http.token_file: {rest}")),
            "for {written:?}"
        );
    }
}

#[test]
fn tls_needs_both_files() {
    let hint = |set: &str| {
        format!(
            "(hint: HTTPS needs both the certificate chain (tls_cert) and its private key \
             (tls_key), PEM files; remove {set} to serve plain HTTP)"
        )
    };
    assert_eq!(
        the_error(&with_tokens("tls_cert = \"/etc/mongo-backupd/cert.pem\"\n")),
        at(
            3,
            1,
            &format!(
                "http.tls_cert: tls_cert is set but no tls_key {}",
                hint("tls_cert")
            )
        )
    );
    assert_eq!(
        the_error(&with_tokens("tls_key = \"/etc/mongo-backupd/key.pem\"\n")),
        at(
            3,
            1,
            &format!(
                "http.tls_key: tls_key is set but no tls_cert {}",
                hint("tls_key")
            )
        )
    );
    assert_eq!(
        the_error(&with_tokens(
            "tls_cert = \"cert.pem\"\ntls_key = \"/etc/mongo-backupd/key.pem\"\n"
        )),
        at(3, 12, "http.tls_cert: tls_cert must be an absolute path, found \"cert.pem\" (hint: start it with \"/\")")
    );
}

#[test]
fn metrics_public_only_on_loopback() {
    for listen in [
        "127.0.0.1:9187",
        "127.0.0.2:9187",
        "[::1]:9187",
        "[::ffff:127.0.0.1]:9187",
    ] {
        let http = settings(&with_tokens(&format!(
            "listen = \"{listen}\"\nmetrics_public = true\n"
        )));
        assert!(http.metrics_public, "{listen}");
    }
    // The default listen address is loopback.
    assert!(settings(&with_tokens("metrics_public = true\n")).metrics_public);

    let hint = |listen: &str| {
        format!(
            "(hint: listen = \"{listen}\" is reachable from other machines: keep \
             metrics_public = false and give Prometheus a token in its scrape config \
             (authorization credentials_file, or bearer_token_file), or listen on 127.0.0.1)"
        )
    };
    for listen in ["0.0.0.0:9187", "[::]:9187", "10.1.2.3:9187"] {
        assert_eq!(
            the_error(&with_tokens(&format!(
                "listen = \"{listen}\"\nmetrics_public = true\n"
            ))),
            at(
                4,
                18,
                &format!(
                    "http.metrics_public: metrics_public is only allowed on a loopback address {}",
                    hint(listen)
                )
            ),
            "{listen}"
        );
    }
    // A bad listen address is reported alone, not as a second problem.
    assert_eq!(
        the_error(&with_tokens("listen = \"0.0.0.0\"\nmetrics_public = true\n")),
        at(3, 10, "http.listen: listen address \"0.0.0.0\" has no port (hint: add the port, e.g. \"0.0.0.0:9187\")")
    );
}

#[test]
fn http_number_errors() {
    let cases = [
        (
            "mutations_per_minute = 0",
            "http.mutations_per_minute: mutations_per_minute = 0 is out of range 1-1000",
        ),
        (
            "mutations_per_minute = 1001",
            "http.mutations_per_minute: mutations_per_minute = 1001 is out of range 1-1000",
        ),
        (
            "max_body_bytes = 1023",
            "http.max_body_bytes: max_body_bytes = 1023 is out of range 1024-10485760",
        ),
        (
            "max_body_bytes = 10485761",
            "http.max_body_bytes: max_body_bytes = 10485761 is out of range 1024-10485760",
        ),
        (
            "max_body_bytes = -1",
            "http.max_body_bytes: max_body_bytes = -1 is out of range 1024-10485760",
        ),
        (
            "max_body_bytes = \"64k\"",
            "http.max_body_bytes: expected integer, found string",
        ),
        (
            "mutations_per_minute = \"5\"",
            "http.mutations_per_minute: expected integer, found string (hint: remove the quotes: mutations_per_minute = 5)",
        ),
        (
            "metrics_public = 1",
            "http.metrics_public: expected boolean, found integer (hint: write metrics_public = true or metrics_public = false, without quotes)",
        ),
    ];
    for (line, rest) in cases {
        let column = line.find('=').unwrap() + 3;
        assert_eq!(
            the_error(&with_tokens(&format!("{line}\n"))),
            at(3, column, rest),
            "for {line:?}"
        );
    }
}

#[test]
fn http_unknown_keys_and_shape() {
    assert_eq!(
        the_error(&with_tokens("token_files = \"/x\"\n")),
        at(
            3,
            1,
            "http.token_files: unknown key \"token_files\" (hint: did you mean \"token_file\"?)"
        )
    );
    assert_eq!(
        the_error(&with_tokens("metrics_pubic = true\n")),
        at(3, 1, "http.metrics_pubic: unknown key \"metrics_pubic\" (hint: did you mean \"metrics_public\"?)")
    );
    assert_eq!(
        the_error(&with_tokens("tls_certificate = \"/x\"\n")),
        at(3, 1, "http.tls_certificate: unknown key \"tls_certificate\" (hint: valid keys here: enabled, listen, token_file, tls_cert, tls_key, metrics_public, mutations_per_minute, max_body_bytes)")
    );
    assert_eq!(
        the_error("[htp]\n"),
        at(
            1,
            2,
            "htp: unknown key \"htp\" (hint: did you mean \"http\"?)"
        )
    );
    assert_eq!(
        the_error("http = true\n"),
        at(1, 8, "http: expected a table ([http]), found boolean")
    );
    // Every mistake at once, in file order.
    assert_eq!(
        errors(&http(
            "listen = \"0.0.0.0:9187\"\nmetrics_public = true\ntls_key = \"/k.pem\"\n\
             max_body_bytes = 0\n"
        )),
        vec![
            at(1, 1, "http.token_file: missing required key \"token_file\" (hint: the API needs a file of tokens, one \"NAME TOKEN\" per line, e.g. token_file = \"/etc/mongo-backupd/api-tokens\")"),
            at(3, 18, "http.metrics_public: metrics_public is only allowed on a loopback address (hint: listen = \"0.0.0.0:9187\" is reachable from other machines: keep metrics_public = false and give Prometheus a token in its scrape config (authorization credentials_file, or bearer_token_file), or listen on 127.0.0.1)"),
            at(4, 1, "http.tls_key: tls_key is set but no tls_cert (hint: HTTPS needs both the certificate chain (tls_cert) and its private key (tls_key), PEM files; remove tls_key to serve plain HTTP)"),
            at(5, 18, "http.max_body_bytes: max_body_bytes = 0 is out of range 1024-10485760"),
        ]
    );
}

#[test]
fn control_socket_and_group_are_read() {
    let defaults = DaemonSettings::default();
    assert_eq!(defaults.control_socket, Path::new(DEFAULT_CONTROL_SOCKET));
    assert_eq!(
        defaults.control_socket,
        Path::new("/run/mongo-backupd/control.sock")
    );
    assert_eq!(defaults.control_group, None);
    assert_eq!(parse_ok("[daemon]\n").daemon, defaults);

    let config = parse_ok(&daemon(
        "control_socket = \"/run/backups/ctl.sock\"\ncontrol_group = \"mongo-backupd-admins\"\n",
    ));
    assert_eq!(
        config.daemon.control_socket,
        Path::new("/run/backups/ctl.sock")
    );
    assert_eq!(
        config.daemon.control_group.as_deref(),
        Some("mongo-backupd-admins")
    );
    for group in ["wheel", "_backup", "db-admins_2", &"g".repeat(32)] {
        let config = parse_ok(&daemon(&format!("control_group = \"{group}\"\n")));
        assert_eq!(config.daemon.control_group.as_deref(), Some(group));
    }
    // Exactly the limit of a socket path.
    let longest = format!("/{}", "s".repeat(106));
    let config = parse_ok(&daemon(&format!("control_socket = \"{longest}\"\n")));
    assert_eq!(config.daemon.control_socket, Path::new(&longest));
}

#[test]
fn control_socket_errors() {
    let too_long = format!("/run/{}.sock", "x".repeat(98));
    let cases = [
        (
            "control.sock".to_string(),
            "control_socket must be an absolute path, found \"control.sock\" (hint: start it with \"/\")".to_string(),
        ),
        (
            String::new(),
            "control_socket is empty (hint: start it with \"/\")".to_string(),
        ),
        (
            too_long,
            "control_socket is 108 bytes long; Unix socket paths are limited to 107 bytes (hint: choose a shorter path, e.g. the default \"/run/mongo-backupd/control.sock\")".to_string(),
        ),
        (
            "/run/mongo-backupd/".to_string(),
            "control_socket must name the socket file, not a directory: \"/run/mongo-backupd/\" (hint: e.g. control_socket = \"/run/mongo-backupd/control.sock\")".to_string(),
        ),
    ];
    for (written, rest) in cases {
        assert_eq!(
            the_error(&daemon(&format!("control_socket = \"{written}\"\n"))),
            at(2, 18, &format!("daemon.control_socket: {rest}")),
            "for {written:?}"
        );
    }
    assert_eq!(
        the_error(&daemon("control_sock = \"/run/x.sock\"\n")),
        at(2, 1, "daemon.control_sock: unknown key \"control_sock\" (hint: did you mean \"control_socket\"?)")
    );
}

#[test]
fn control_group_errors() {
    let long = "g".repeat(33);
    let cases = [
        (
            "1admins".to_string(),
            format!("\"1admins\" is not a valid group name {GROUP_HINT}"),
        ),
        (
            "db admins".to_string(),
            format!("\"db admins\" is not a valid group name {GROUP_HINT}"),
        ),
        (
            "-admins".to_string(),
            format!("\"-admins\" is not a valid group name {GROUP_HINT}"),
        ),
        (
            "admins@corp".to_string(),
            format!("\"admins@corp\" is not a valid group name {GROUP_HINT}"),
        ),
        (
            "1001".to_string(),
            format!("\"1001\" is not a valid group name {GID_HINT}"),
        ),
        (
            long.clone(),
            format!("group name \"{long}\" is longer than 32 characters {GROUP_HINT}"),
        ),
        (
            String::new(),
            "control_group is empty (hint: name a group, or remove control_group to leave the socket to the daemon's user)".to_string(),
        ),
    ];
    for (written, rest) in cases {
        assert_eq!(
            the_error(&daemon(&format!("control_group = \"{written}\"\n"))),
            at(2, 17, &format!("daemon.control_group: {rest}")),
            "for {written:?}"
        );
    }
    assert_eq!(
        the_error(&daemon("control_group = 1001\n")),
        at(
            2,
            17,
            &format!(
                "daemon.control_group: expected a group name, found the number 1001 {GID_HINT}"
            )
        )
    );
    assert_eq!(
        the_error(&daemon("control_group = [\"admins\"]\n")),
        at(2, 17, "daemon.control_group: expected string, found array")
    );
}
