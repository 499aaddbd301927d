//! Command-line interface: one subcommand per job.

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

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Exit codes (documented in the README).
pub mod exit {
    pub const OK: u8 = 0;
    pub const BAD_INPUT: u8 = 2;
}

pub async fn main(cli: Cli) -> ExitCode {
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<u8> {
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
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("shutting down");
            stopper.stop();
        }
    });
    running.wait().await?;
    Ok(exit::OK)
}
