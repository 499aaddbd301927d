use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    mfa_conform::cli::main(mfa_conform::cli::Cli::parse()).await
}
