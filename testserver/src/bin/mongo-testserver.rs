//! Runs the test server standalone so a person can point `mongosh`, a
//! driver or `mongo-backupd` at it. Data lives in memory only.

use std::time::Duration;

use clap::Parser;

/// An in-memory MongoDB 7.0-compatible single-node replica set (or, with
/// --standalone, a standalone mongod), for tests.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on. Keep the default unless you really want other
    /// machines to reach an unauthenticated test database.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 27017)]
    port: u16,
    /// Host name clients must use, if not the listen address.
    #[arg(long)]
    advertise_host: Option<String>,
    /// Oplog capacity in MiB.
    #[arg(long, default_value_t = 256)]
    oplog_size_mb: u64,
    /// Seconds between periodic no-op oplog entries while idle (0: never).
    #[arg(long, default_value_t = 10)]
    noop_interval_secs: u64,
    /// Run as a standalone mongod (no replica set, no oplog, no cluster
    /// time) instead of a single-node replica set primary.
    #[arg(long)]
    standalone: bool,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut builder = mongo_testserver::TestServer::builder()
        .bind(args.host.clone())
        .port(args.port)
        .oplog_max_bytes(args.oplog_size_mb.saturating_mul(1024 * 1024))
        .noop_interval(
            (args.noop_interval_secs > 0).then(|| Duration::from_secs(args.noop_interval_secs)),
        );
    if let Some(h) = args.advertise_host {
        builder = builder.advertise_host(h);
    }
    if args.standalone {
        builder = builder.standalone();
    }
    let server = match builder.start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "mongo-testserver: cannot listen on {}:{}: {e}",
                args.host, args.port
            );
            return std::process::ExitCode::from(1);
        }
    };
    // The URI on stdout, alone on its line, so scripts can read it.
    println!("{}", server.uri());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mongo-testserver: cannot start a runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    });
    tracing::info!("mongo-testserver is shutting down.");
    drop(server);
    std::process::ExitCode::SUCCESS
}
