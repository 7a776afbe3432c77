//! Command-line entry point; the work happens in the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use questline::{db, settings, telemetry, Application, Settings};

#[derive(Parser)]
#[command(name = "questline", version, about = "A self-hostable Steam achievement tracker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the web server (applies migrations first unless RUN_MIGRATIONS=false).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run the background workers (Steam sync jobs, email delivery) without
    /// the web server; any number can run beside `serve` instances.
    Worker,
    /// Print fresh SESSION_SECRET and MASTER_KEY lines for a .env file.
    GenerateSecrets,
    /// Re-encrypt every stored secret under MASTER_KEY/MASTER_KEY_ID; the old
    /// key is read from OLD_MASTER_KEY and OLD_MASTER_KEY_ID.
    RotateKeys,
    /// Import a legacy (Flask app) data directory, as FORMAT.md describes;
    /// or, with --rollback ID, remove exactly what an earlier run added.
    ImportLegacy {
        /// The legacy data directory (holding users.json).
        #[arg(required_unless_present = "rollback")]
        dir: Option<std::path::PathBuf>,
        /// Read and check everything and print the report, writing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also write the report as JSON to this file.
        #[arg(long)]
        report: Option<std::path::PathBuf>,
        /// Remove what run ID added (the id is printed by each run).
        #[arg(long, value_name = "ID", conflicts_with_all = ["dir", "dry_run"])]
        rollback: Option<i64>,
        /// With --rollback: go ahead even when accounts the run brought were
        /// used since (their owners' work goes with them; audited).
        #[arg(long, requires = "rollback")]
        force: bool,
        /// Never load in bulk: the site keeps answering during a large
        /// import, which then takes several times longer (see the README).
        #[arg(long, conflicts_with = "rollback")]
        row_by_row: bool,
    },
    /// Write the whole database to FILE (pg_dump, custom format).
    Backup { file: std::path::PathBuf },
    /// Replace the database's contents with a backup (pg_restore, in one
    /// transaction). Needs --yes: everything written since is lost.
    Restore {
        file: std::path::PathBuf,
        #[arg(long)]
        yes: bool,
    },
    /// Create a verified admin account, or make an existing account an admin.
    /// The password is read from QUESTLINE_ADMIN_PASSWORD, else from the
    /// first line of standard input.
    CreateAdmin {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
    },
    /// Serves the fake Steam Web API (for the demo and offline
    /// development): the demo player's library with `--demo`.
    FakeSteam {
        #[arg(long, default_value = "127.0.0.1:8091")]
        bind: std::net::SocketAddr,
        #[arg(long)]
        demo: bool,
        /// With --demo: this many more players (ids after the demo
        /// player's), for `seed-demo --players`; at most 10000.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
        players: u32,
    },
    /// Work out points again: every user's from scratch, or with --games
    /// (`all`, or app ids separated by commas) every owner's in those games,
    /// as after their global percentages changed. Prints the time it took.
    Rescore {
        #[arg(long)]
        games: Option<String>,
    },
    /// Creates the demo account, linked to the fake Steam's demo player, and
    /// queues its first sync (once; a second run changes nothing).
    SeedDemo {
        /// Also this many linked accounts, `player1` and on, with the demo
        /// password (for load and fault tests; see `fake-steam --players`);
        /// at most 10000.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=10_000))]
        players: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::GenerateSecrets = cli.command {
        print!("{}", settings::generate_secrets());
        return ExitCode::SUCCESS;
    }
    if let Command::FakeSteam { bind, demo, players } = cli.command {
        return match fake_steam(bind, demo, players) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("questline: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // A missing .env is normal in production, where the environment is set by
    // the service manager.
    let _ = dotenvy::dotenv();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("questline: {e}");
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    telemetry::init(settings.log_format);
    let result = match cli.command {
        Command::Serve => serve(settings),
        Command::Migrate => migrate(&settings),
        Command::Worker => worker(settings),
        Command::RotateKeys => rotate_keys(&settings),
        Command::CreateAdmin { username, email } => create_admin(&settings, &username, &email),
        Command::ImportLegacy { dir, dry_run, report, rollback, force, row_by_row } => {
            let loading = if row_by_row { questline::import::Loading::RowByRow } else { Default::default() };
            questline::import::command(&settings, dir, dry_run, report, rollback, force, loading)
        }
        Command::Backup { file } => {
            questline::backup::backup(&settings, &file).map(|_| println!("backup written to {}", file.display()))
        }
        Command::Restore { file, yes } => {
            if yes {
                questline::backup::restore(&settings, &file).map(|_| println!("restored from {}", file.display()))
            } else {
                Err(anyhow::anyhow!("restore replaces everything in the database: run again with --yes"))
            }
        }
        Command::SeedDemo { players } => seed_demo(&settings, players),
        Command::Rescore { games } => rescore(&settings, games.as_deref()),
        Command::GenerateSecrets | Command::FakeSteam { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = ?e, "command failed");
            eprintln!("questline: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn fake_steam(bind: std::net::SocketAddr, demo: bool, players: u32) -> anyhow::Result<()> {
    use questline::steam::{demo as d, fake};
    actix_web::rt::System::new().block_on(async move {
        let state = if demo { d::demo_state_with_players(players) } else { fake::FakeState::default() };
        let listener = std::net::TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
        fake::FakeSteam::start_on(state, listener)?;
        println!("fake Steam on http://{bind} (demo key {}); Ctrl-C to stop", d::DEMO_KEY);
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        Ok(())
    })
}

fn seed_demo(settings: &Settings, players: u32) -> anyhow::Result<()> {
    use questline::steam::demo;
    let pool = db::build_pool(settings);
    let mut conn = pool.get().context("connecting to PostgreSQL (DATABASE_URL)")?;
    let cipher = questline::crypto::Cipher::from_settings(settings);
    if demo::seed(&mut conn, &cipher)? {
        println!("demo account created: sign in as `{}` with `{}`", demo::DEMO_USER, demo::DEMO_PASSWORD);
    } else {
        println!("the demo account exists: sign in as `{}` with `{}`", demo::DEMO_USER, demo::DEMO_PASSWORD);
    }
    if players > 0 {
        let made = demo::seed_players(&mut conn, &cipher, players)?;
        println!("{made} player account(s) created (player1 to player{players}, same password)");
    }
    Ok(())
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        tracing::info!(settings = ?settings, "starting");
        let public = settings.public_base_url.clone();
        let app = Application::build(settings).await?;
        tracing::info!(port = app.port(), url = %public, "listening");
        app.run_until_stopped().await.context("server stopped with an error")
    })
}

fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = db::build_pool(settings);
    let mut conn = pool.get().context("connecting to PostgreSQL (DATABASE_URL)")?;
    let applied = questline::models::migrate(&mut conn)?;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for name in applied {
        println!("applied {name}");
    }
    Ok(())
}

fn create_admin(settings: &Settings, username: &str, email: &str) -> anyhow::Result<()> {
    use questline::admin_cli::{self, AdminOutcome};
    let password = match std::env::var("QUESTLINE_ADMIN_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            eprint!("Password for {username}: ");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the password")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let pool = db::build_pool(settings);
    let mut conn = pool.get().context("connecting to PostgreSQL (DATABASE_URL)")?;
    match admin_cli::create_admin(&mut conn, username, email, &password)? {
        AdminOutcome::Created => println!("created admin {username}; sign in and enrol 2FA to reach the admin pages"),
        AdminOutcome::Promoted => println!("{username} already existed and is now an admin"),
        AdminOutcome::AlreadyAdmin => println!("{username} is already an admin; nothing changed"),
    }
    Ok(())
}

fn rescore(settings: &Settings, games: Option<&str>) -> anyhow::Result<()> {
    let pool = db::build_pool(settings);
    let mut conn = pool.get().context("connecting to PostgreSQL (DATABASE_URL)")?;
    let done = questline::rarity::rescore_command(&mut conn, games)?;
    if done.games > 0 {
        println!("rescored {} game(s): {} user total(s) moved, in {:.2} s", done.games, done.moved, done.seconds);
    } else {
        println!("rescored {} user(s) from scratch in {:.2} s", done.users, done.seconds);
    }
    Ok(())
}

fn worker(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let pool = db::build_pool(&settings);
        let redis = questline::cache::Redis::connect(&settings).await.context("connecting to Redis (REDIS_URL)")?;
        let state = actix_web::web::Data::new(questline::state::AppState::new(settings, pool, redis));
        let workers = questline::startup::spawn_workers(&state)?;
        tracing::info!("workers running; Ctrl-C or SIGTERM to stop");
        questline::shutdown::requested().await;
        let grace = state.settings.shutdown_grace;
        tracing::info!(grace_seconds = grace.as_secs(), "stopping: finishing jobs in flight");
        let handed_back = workers.shut_down(grace).await;
        tracing::info!(jobs_handed_back = handed_back, "stopped");
        Ok(())
    })
}

fn rotate_keys(settings: &Settings) -> anyhow::Result<()> {
    use base64::Engine;
    use questline::crypto::Cipher;
    let old_id = std::env::var("OLD_MASTER_KEY_ID").context("OLD_MASTER_KEY_ID is not set")?;
    let old_key = std::env::var("OLD_MASTER_KEY").context("OLD_MASTER_KEY is not set")?;
    let old_key =
        base64::engine::general_purpose::STANDARD.decode(old_key.trim()).context("OLD_MASTER_KEY is not base64")?;
    anyhow::ensure!(old_key.len() == 32, "OLD_MASTER_KEY must decode to 32 bytes");
    anyhow::ensure!(old_id != settings.master_key_id, "OLD_MASTER_KEY_ID must differ from MASTER_KEY_ID");
    let old = Cipher::new(&old_id, &old_key);
    let new = Cipher::from_settings(settings);
    let pool = db::build_pool(settings);
    let mut conn = pool.get().context("connecting to PostgreSQL (DATABASE_URL)")?;
    let done = questline::rotate::rotate(&mut conn, &old, &new)?;
    println!(
        "re-encrypted {} Steam API key(s), {} TOTP secret(s) and {} instance Steam key from {old_id} to {}",
        done.steam_keys, done.totp_secrets, done.instance_keys, settings.master_key_id
    );
    Ok(())
}
