//! The `gatehouse` command: parses the command line, starts logging and
//! dispatches. Decides nothing else.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use gatehouse::app::AppState;
use gatehouse::config::{DEFAULT_CONFIG_PATH, LogFormat, Settings};
use gatehouse::server::Application;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "OAuth 2.0 / OpenID Connect identity provider"
)]
struct Cli {
    /// Config file (default: config/gatehouse.toml when it exists).
    #[arg(long, global = true, env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,
    /// Log format; overrides log.format.
    #[arg(long, global = true, value_enum, env = "GATEHOUSE_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations, then serve.
    Serve,
    /// Apply migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Start a new signing key: published now, signing after keys.jwks_max_age.
    Rotate,
    /// List keys and their state.
    List,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create an activated user; the password is read from standard input.
    Create {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Give the user the admin role.
        #[arg(long)]
        admin: bool,
    },
    /// Activate a registered user without the emailed code.
    Activate {
        /// Email address.
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets masked), or the error.
    Check,
}

fn config_path(cli: Option<PathBuf>) -> Option<PathBuf> {
    cli.or_else(|| {
        Path::new(DEFAULT_CONFIG_PATH)
            .exists()
            .then(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    })
}

fn main() -> ExitCode {
    gatehouse::workers::limit_heap_arenas();
    let cli = Cli::parse();
    let path = config_path(cli.config.clone());
    let settings = match Settings::load(path.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Openapi = cli.command {
        println!("{}", gatehouse::api::spec_json());
        return ExitCode::SUCCESS;
    }
    if let Command::Config {
        command: ConfigCommand::Check,
    } = cli.command
    {
        println!(
            "# effective configuration{}\n{}",
            path.as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default(),
            settings.masked_toml()
        );
        return ExitCode::SUCCESS;
    }
    gatehouse::telemetry::init(
        cli.log_format.unwrap_or(settings.log.format),
        &settings.log.level,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gatehouse: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings, path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Printed once, here; not also logged.
            eprintln!("gatehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings, path: Option<PathBuf>) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(settings, path).await,
        Command::Migrate => {
            let db = gatehouse::db::connect(&settings.database).await?;
            gatehouse::db::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            // Read-only: no migration, no key generation.
            let db = gatehouse::db::connect(&settings.database).await?;
            let ttl = settings.tokens.access_ttl.max(settings.tokens.id_token_ttl);
            let now = gatehouse::clock::Clock::default().now();
            let keys = gatehouse::keys::list(&db, now, ttl)
                .await
                .context("reading the signing keys (has `gatehouse migrate` run?)")?;
            for k in keys {
                println!(
                    "{:<44} {:<5} gen {:<3} {:<9} activates {} retired {}",
                    k.kid,
                    k.alg,
                    k.generation,
                    k.state,
                    k.activates_at.to_rfc3339(),
                    k.retired_at.map_or_else(|| "-".into(), |t| t.to_rfc3339())
                );
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate,
        } => {
            let (_trigger, shutdown) = gatehouse::shutdown::channel();
            let state = AppState::build(settings, shutdown).await?;
            let now = state.clock.now();
            let settings = state.live.get();
            let ttl = settings.tokens.access_ttl.max(settings.tokens.id_token_ttl);
            let keys = state
                .keys
                .rotate(now, settings.keys.jwks_max_age, ttl)
                .await?;
            for key in keys {
                println!(
                    "new {} key {} (generation {}) is published now and signs from {}",
                    key.alg,
                    key.kid,
                    key.generation,
                    key.activates_at.to_rfc3339()
                );
            }
            Ok(())
        }
        Command::Users { command } => {
            let (_trigger, shutdown) = gatehouse::shutdown::channel();
            let state = AppState::build(settings, shutdown).await?;
            match command {
                UsersCommand::Create { email, admin } => {
                    let password = read_password()?;
                    let password = password.trim_end_matches(['\n', '\r']);
                    let user = state
                        .accounts
                        .create_user(&email, password, admin)
                        .await
                        .map_err(describe)?;
                    println!("created user {} ({})", user.id, user.email);
                }
                UsersCommand::Activate { email } => {
                    let user = state
                        .accounts
                        .activate_by_operator(&email)
                        .await
                        .map_err(describe)?;
                    println!("activated user {} ({})", user.id, user.email);
                }
            }
            Ok(())
        }
        Command::Openapi | Command::Config { .. } => Ok(()),
    }
}

/// Domain errors for a terminal: validation problems spelled out.
/// The new user's password: from a prompt that does not echo when stdin
/// is a terminal, else the whole of stdin (scripts, `echo … |`).
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Password: ").context("reading the password");
    }
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from stdin")?;
    Ok(password)
}

fn describe(e: gatehouse::error::Error) -> anyhow::Error {
    match e {
        gatehouse::error::Error::Validation(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k} {}", v.join(", ")))
                .collect();
            anyhow::anyhow!("{}", parts.join("; "))
        }
        other => anyhow::anyhow!("{other}"),
    }
}

async fn serve(settings: Settings, path: Option<PathBuf>) -> anyhow::Result<()> {
    let public_url = settings.server.public_url.clone();
    match &path {
        Some(p) => tracing::info!(
            config.path = %p.display(),
            "configuration loaded from {}; changes to it apply without a restart",
            p.display()
        ),
        None => tracing::info!(
            "no configuration file found ({DEFAULT_CONFIG_PATH} or --config); \
             running on defaults and GATEHOUSE_* variables, hot reload off"
        ),
    }
    let app = Application::build(settings, path).await?;
    tracing::info!(
        port = app.port(),
        "Gatehouse is ready; API docs at {public_url}/docs"
    );
    app.run_until_stopped(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
