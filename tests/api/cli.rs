//! The command line as operators use it: logs on stderr without colour
//! when not on a terminal, an error printed once, read-only commands that
//! write nothing, passwords from stdin when it is not a terminal.

use std::process::{Command, Stdio};

fn gatehouse(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    c.current_dir(dir)
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .env(
            "GATEHOUSE_DATABASE__URL",
            format!("sqlite://{}?mode=rwc", dir.join("gh.db").display()),
        )
        .env("GATEHOUSE_PASSWORD_HASH__MEMORY_KIB", "256")
        .env("GATEHOUSE_PASSWORD_HASH__ITERATIONS", "1");
    c
}

fn tables(dir: &std::path::Path) -> usize {
    // The SQLite file format keeps each table's "CREATE TABLE" text in
    // sqlite_master, in the file or, in WAL mode, its log: count those
    // rather than link a client here.
    ["gh.db", "gh.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(dir.join(f)).ok())
        .map(|bytes| {
            bytes
                .windows(b"CREATE TABLE".len())
                .filter(|w| w == b"CREATE TABLE")
                .count()
        })
        .sum()
}

#[test]
fn read_only_commands_run_no_migration_and_errors_print_once() {
    let dir = tempfile::tempdir().expect("dir");
    let out = gatehouse(dir.path(), &["keys", "list"])
        .output()
        .expect("run keys list");
    assert!(!out.status.success(), "no keys table yet: an error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("gatehouse:").count(),
        1,
        "the error once: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "no ANSI colours off a terminal");
    assert_eq!(tables(dir.path()), 0, "keys list migrated the database");

    let out = gatehouse(dir.path(), &["config", "check"])
        .output()
        .expect("run config check");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("[server]"));
    assert_eq!(tables(dir.path()), 0, "config check touched the database");
}

#[test]
fn users_create_reads_the_password_from_stdin_and_logs_go_to_stderr() {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = gatehouse(
        dir.path(),
        &["users", "create", "--email", "cli@example.com"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"vivid-Meadow-lantern-42\n")
            .expect("write password");
    }
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("created user"), "{stdout}");
    assert!(
        !stdout.contains("INFO") && !stdout.contains("migration"),
        "logs belong on stderr: {stdout}"
    );
    assert!(!stderr.contains('\u{1b}'), "no ANSI colours off a terminal");
    assert!(tables(dir.path()) > 0, "users create migrates");
}

#[test]
fn an_in_memory_sqlite_url_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let out = gatehouse(dir.path(), &["migrate"])
        .env("GATEHOUSE_DATABASE__URL", "sqlite::memory:")
        .output()
        .expect("run migrate");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in-memory or temporary SQLite database is not supported"),
        "{stderr}"
    );
}
