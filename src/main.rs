//! The `mongo-backupd` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    mongo_backupd::cli::main()
}
