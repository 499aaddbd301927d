//! Command-line interface: one subcommand per job.

use crate::exit::Exit;
use crate::server::config::ServerConfig;
use crate::server::tls::TlsSource;
use crate::server::{self, ServeOptions};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "mfa-conform",
    version,
    about = "Conformance harness, load generator and reference server for Auth0-style MFA APIs"
)]
pub struct Cli {
    /// More log output on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reference MFA server (the default target of `run` and `load`).
    Serve(ServeArgs),
    /// Run the conformance suite against a target (default: the embedded reference server).
    Run(RunArgs),
    /// Replay scenarios concurrently and measure latency percentiles (no coordinated omission).
    Load(crate::load::LoadArgs),
    /// Review, accept or reject pending response snapshots (`.snap.new` files).
    Snapshots(crate::snapshot::SnapshotsArgs),
    /// The built-in suite: write it out to read or edit.
    Scenarios {
        #[command(subcommand)]
        action: ScenariosAction,
    },
    /// Write a commented target profile for a new implementation.
    Init(crate::init::InitArgs),
    /// Print the JSON Schema of a file format, for editor validation and completion.
    Schema {
        /// Which format.
        #[arg(value_enum, default_value = "scenario")]
        kind: SchemaKind,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScenariosAction {
    /// Write the built-in scenarios, their catalogue and the reference snapshots to DIR.
    Export {
        dir: PathBuf,
        /// Replace files that exist.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SchemaKind {
    Scenario,
    Profile,
    Requirements,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: crate::target::TargetArgs,
    /// Only scenarios with this tag (repeatable: any of them).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Leave out scenarios with this tag (repeatable).
    #[arg(long = "skip-tag")]
    pub skip_tags: Vec<String>,
    /// Only scenarios whose name matches this glob (repeatable).
    #[arg(long = "name")]
    pub names: Vec<String>,
    /// Scenarios run at the same time.
    #[arg(long, short = 'j', default_value_t = 8)]
    pub jobs: usize,
    /// Stop starting scenarios after the first failure.
    #[arg(long)]
    pub fail_fast: bool,
    /// `should` failures fail the run too.
    #[arg(long)]
    pub strict: bool,
    /// Known deviations: YAML list of {requirement, reason}.
    #[arg(long)]
    pub expected_failures: Option<PathBuf>,
    /// Where to write report.json, junit.xml, summary.md, compatibility.md
    /// (default: reports/<timestamp>/).
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// Write only report.json, to this path.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No per-scenario lines; only failures and the totals.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub snapshot: crate::snapshot::RunSnapshotArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// YAML configuration (clients, realm, factors, recovery codes, users, limits).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Turn off the `/__control/*` test API.
    #[arg(long)]
    pub no_control: bool,
    /// Serve HTTPS. Without --tls-cert/--tls-key, a local CA and a certificate for
    /// localhost/127.0.0.1/::1 are generated and the CA is written to --tls-cert-out.
    #[arg(long)]
    pub tls: bool,
    /// Certificate (PEM) to serve, with --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where to write the generated CA certificate for clients to trust.
    #[arg(long, default_value = "mfa-conform-ca.pem")]
    pub tls_cert_out: PathBuf,
    /// Fixed public base URL for issuer and audiences (default: from each request's Host).
    #[arg(long)]
    pub public_url: Option<String>,
}

/// Log level on stderr: warnings; `-v` adds each request step's line and status
/// (`info`), `-vv` its headers and bodies (`debug`), redacted. `RUST_LOG` overrides.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: logs piped to a file or a CI log stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

pub async fn main(cli: Cli) -> ExitCode {
    init_logging(cli.verbose);
    let verbose = cli.verbose;
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Run(args) => Ok(run(args, verbose > 0).await),
        Command::Load(args) => Ok(crate::load::main(args).await),
        Command::Snapshots(args) => Ok(crate::snapshot::review::main(args)),
        Command::Schema { kind } => schema(kind),
        Command::Init(args) => Ok(crate::init::main(args)),
        Command::Scenarios {
            action: ScenariosAction::Export { dir, force },
        } => export(&dir, force),
    };
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::BadInput.into()
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    let mut config = match &args.config {
        Some(path) => ServerConfig::load(path)?,
        None => ServerConfig::default(),
    };
    if let Some(url) = args.public_url {
        config.public_url = Some(url);
    }
    let tls = match (args.tls, args.tls_cert, args.tls_key) {
        (_, Some(cert), Some(key)) => Some(TlsSource::Files { cert, key }),
        (true, _, _) => Some(TlsSource::SelfSigned {
            ca_out: args.tls_cert_out.clone(),
        }),
        _ => None,
    };
    let self_signed = matches!(tls, Some(TlsSource::SelfSigned { .. }));
    let running = server::start(
        args.addr,
        ServeOptions {
            config,
            control: !args.no_control,
            tls,
        },
    )
    .await?;
    // SIGINT and SIGTERM shut the server down gracefully; listening starts before the
    // first line, so a supervisor that reads it can stop the server from then on.
    let signal = crate::signals::shutdown_signal();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", running.base_url)?;
        out.flush()?;
    }
    if self_signed {
        eprintln!(
            "TLS: generated a local CA; trust {} (e.g. SSL_CERT_FILE, curl --cacert)",
            args.tls_cert_out.display()
        );
    }
    if args.no_control {
        eprintln!("test-control API (/__control/*) is off");
    }
    let stopper = running.stopper();
    tokio::spawn(async move {
        let name = signal.await;
        eprintln!("{name}: shutting down (again to quit now)");
        stopper.stop();
    });
    running.wait().await?;
    Ok(Exit::Ok)
}

/// `run`; snapshot diffs on the terminal with `diffs` (`-v`), always in summary.md.
async fn run(args: RunArgs, diffs: bool) -> Exit {
    let options = crate::run::RunOptions {
        profile: args.target.profile,
        base_url: args.target.base_url,
        scenarios: args.target.scenarios,
        tags: args.tags,
        skip_tags: args.skip_tags,
        names: args.names,
        jobs: args.jobs,
        fail_fast: args.fail_fast,
        strict: args.strict,
        expected_failures: args.expected_failures,
        report_dir: args.report_dir,
        json: args.json,
        quiet: args.quiet,
        snapshots: args.snapshot.options(),
    };
    match crate::run::run(options).await {
        Ok(outcome) => {
            print!(
                "{}",
                crate::report::console::summary_with(&outcome.report, diffs)
            );
            if let Some(snapshots) = &outcome.snapshots {
                print!("{}", snapshots.render());
            }
            if let Some(dir) = &outcome.report_dir {
                println!("reports: {}", dir.display());
            }
            outcome.exit
        }
        Err(stop) => stop.report(),
    }
}

fn export(dir: &std::path::Path, force: bool) -> anyhow::Result<Exit> {
    let written = crate::suite::export(dir, force).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{e} (pass --force to replace the files)")
        } else {
            anyhow::anyhow!("cannot export to {}: {e}", dir.display())
        }
    })?;
    eprintln!(
        "wrote {written} files to {}; run them with --scenarios {}",
        dir.display(),
        dir.display()
    );
    Ok(Exit::Ok)
}

/// Adds the requirement ids as `examples` of every `req` property (editors offer them).
fn offer_requirement_ids(schema: &mut serde_json::Value, ids: &[String]) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(properties)) = map.get_mut("properties")
                && let Some(serde_json::Value::Object(req)) = properties.get_mut("req")
            {
                req.insert("examples".into(), serde_json::json!(ids));
            }
            map.values_mut().for_each(|v| offer_requirement_ids(v, ids));
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().for_each(|v| offer_requirement_ids(v, ids))
        }
        _ => {}
    }
}

fn schema(kind: SchemaKind) -> anyhow::Result<Exit> {
    let schema = match kind {
        SchemaKind::Scenario => {
            let mut schema =
                serde_json::to_value(schemars::schema_for!(crate::scenario::Scenario))?;
            // Completion offers the built-in requirement ids; a user's own ids stay valid.
            let ids: Vec<String> = crate::suite::load(&[])
                .map(|suite| {
                    suite
                        .catalogue
                        .requirements
                        .into_iter()
                        .map(|r| r.id)
                        .collect()
                })
                .unwrap_or_default();
            offer_requirement_ids(&mut schema, &ids);
            println!("{}", serde_json::to_string_pretty(&schema)?);
            return Ok(Exit::Ok);
        }
        SchemaKind::Profile => schemars::schema_for!(crate::target::TargetProfile),
        SchemaKind::Requirements => schemars::schema_for!(crate::scenario::Catalogue),
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(Exit::Ok)
}
