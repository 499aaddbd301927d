//! Command-line options: the snapshot flags of `run`, and `mfa-conform snapshots`.

use super::{Comparison, Mode, SnapshotOptions};
use crate::scenario::model::Severity;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Snapshot flags of `mfa-conform run`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Snapshots")]
pub struct RunSnapshotArgs {
    /// Snapshot every request step (default: steps and scenarios marked `snapshot: true`,
    /// and steps that already have a snapshot).
    #[arg(long)]
    pub snapshot: bool,
    /// compare, record (write/overwrite), new-only (write missing ones, compare the rest)
    /// or off. Default: compare when the profile has snapshots.
    #[arg(long = "snapshots", value_enum, value_name = "MODE")]
    pub mode: Option<Mode>,
    /// exact, or shape: only status, media type, keys, value types and array lengths.
    #[arg(long, value_enum, default_value = "exact", value_name = "HOW")]
    pub snapshot_compare: Comparison,
    /// Whose snapshots to use (default: the profile's file stem; `reference` for the
    /// embedded server), e.g. `--snapshot-compare shape --snapshot-profile reference`.
    #[arg(long, value_name = "NAME")]
    pub snapshot_profile: Option<String>,
    /// Severity of snapshot checks: must (a mismatch fails the run) or should (a warning).
    #[arg(long, value_parser = parse_severity, default_value = "must", value_name = "LEVEL")]
    pub snapshot_severity: Severity,
    /// Directory of snapshots (`<dir>/<profile>/<scenario>/<step>.snap`).
    #[arg(long, default_value = "snapshots", value_name = "DIR")]
    pub snapshot_dir: PathBuf,
}

/// A `--snapshot-severity` that is neither `must` nor `should`.
#[derive(Debug, thiserror::Error)]
#[error("expected must or should, not {0:?}")]
pub struct BadSeverity(String);

fn parse_severity(text: &str) -> Result<Severity, BadSeverity> {
    match text {
        "must" => Ok(Severity::Must),
        "should" => Ok(Severity::Should),
        other => Err(BadSeverity(other.to_owned())),
    }
}

impl RunSnapshotArgs {
    pub fn options(&self) -> SnapshotOptions {
        SnapshotOptions {
            dir: Some(self.snapshot_dir.clone()),
            mode: self.mode,
            all: self.snapshot,
            compare: self.snapshot_compare,
            profile: self.snapshot_profile.clone(),
            severity: self.snapshot_severity,
        }
    }
}

/// `mfa-conform snapshots`: settle pending `.snap.new` files.
#[derive(Debug, Clone, Args)]
pub struct SnapshotsArgs {
    #[command(subcommand)]
    pub action: SnapshotsAction,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SnapshotsAction {
    /// Walk the pending snapshots one by one, with their diff: accept, reject or skip.
    Review(Selection),
    /// Keep the pending snapshots (`.snap.new` replaces `.snap`).
    Accept(Selection),
    /// Discard the pending snapshots.
    Reject(Selection),
    /// List the pending snapshots.
    Pending(Selection),
}

/// Which pending snapshots.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Every pending snapshot under --dir.
    #[arg(long, conflicts_with = "paths")]
    pub all: bool,
    /// `.snap.new` or `.snap` files, or directories (every pending snapshot below them).
    /// `review` and `pending` default to --dir.
    pub paths: Vec<PathBuf>,
    /// Directory of snapshots.
    #[arg(long, default_value = "snapshots", value_name = "DIR")]
    pub dir: PathBuf,
}
