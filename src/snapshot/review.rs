//! `mfa-conform snapshots review|accept|reject|pending`: settling the `.snap.new` files a
//! run left beside the snapshots, without `cargo insta` (a vendor testing a non-Rust
//! implementation has no Cargo workspace). `review` reads one answer per line from stdin,
//! so it works in a terminal, through a pseudo-terminal, or with scripted input.

use super::args::{Selection, SnapshotsAction, SnapshotsArgs};
use super::diff;
use super::file::{NEW_SUFFIX, SnapFile, snap_path};
use crate::exit::Exit;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Why `snapshots` cannot do what it was asked (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("say which pending snapshots: --all, or .snap.new files, .snap files or directories")]
    NoSelection,
    #[error("{}: no pending snapshot there", .0.display())]
    NotPending(PathBuf),
    #[error("cannot write to stdout: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs `mfa-conform snapshots` on the process's stdin and stdout.
pub fn main(args: SnapshotsArgs) -> Exit {
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut output = std::io::stdout().lock();
    match run(args, &mut input, &mut output, true) {
        Ok(code) => code,
        Err(message) => {
            let _ = output.flush();
            eprintln!("error: {message}");
            Exit::BadInput
        }
    }
}

/// `snapshots` with explicit input and output (`colour`: diffs coloured if stdout is a
/// terminal). `Err` is bad input (exit 2).
pub fn run(
    args: SnapshotsArgs,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    colour: bool,
) -> Result<Exit, ReviewError> {
    let io = ReviewError::Output;
    match args.action {
        SnapshotsAction::Review(selection) => {
            let pending = pending(&selection, true)?;
            review(&pending, input, output, colour).map_err(io)
        }
        SnapshotsAction::Pending(selection) => {
            let pending = pending(&selection, true)?;
            for path in &pending {
                let kind = if snap_path(path).is_some_and(|p| p.is_file()) {
                    "changed"
                } else {
                    "new"
                };
                writeln!(output, "{} ({kind})", path.display()).map_err(io)?;
            }
            writeln!(output, "{} pending snapshot(s)", pending.len()).map_err(io)?;
            Ok(Exit::Ok)
        }
        SnapshotsAction::Accept(selection) => {
            settle_all(&pending(&selection, false)?, Decision::Accept, output).map_err(io)
        }
        SnapshotsAction::Reject(selection) => {
            settle_all(&pending(&selection, false)?, Decision::Reject, output).map_err(io)
        }
    }
}

/// The pending files a selection names, sorted. `default_all`: no paths means every
/// pending file under `--dir` (review, pending); otherwise `--all` or paths are required.
pub fn pending(selection: &Selection, default_all: bool) -> Result<Vec<PathBuf>, ReviewError> {
    let mut out = Vec::new();
    if selection.all || (selection.paths.is_empty() && default_all) {
        walk(&selection.dir, &mut out);
    } else if selection.paths.is_empty() {
        return Err(ReviewError::NoSelection);
    }
    for path in &selection.paths {
        if path.is_dir() {
            walk(path, &mut out);
        } else if path.to_string_lossy().ends_with(NEW_SUFFIX) && path.is_file() {
            out.push(path.clone());
        } else if path.extension().is_some_and(|e| e == "snap")
            && super::file::new_path(path).is_file()
        {
            out.push(super::file::new_path(path));
        } else {
            return Err(ReviewError::NotPending(path.clone()));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.to_string_lossy().ends_with(NEW_SUFFIX) {
            out.push(path);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Reject,
}

/// Accepts (`.snap.new` becomes `.snap`) or rejects (`.snap.new` is deleted) one pending
/// snapshot; returns the `.snap` path.
pub fn settle(new: &Path, decision: Decision) -> std::io::Result<PathBuf> {
    let snap = snap_path(new).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a .snap.new file", new.display()),
        )
    })?;
    match decision {
        Decision::Accept => std::fs::rename(new, &snap)?,
        Decision::Reject => std::fs::remove_file(new)?,
    }
    Ok(snap)
}

fn settle_all(
    pending: &[PathBuf],
    decision: Decision,
    output: &mut dyn Write,
) -> std::io::Result<Exit> {
    let verb = match decision {
        Decision::Accept => "accepted",
        Decision::Reject => "rejected",
    };
    let mut failed = false;
    for path in pending {
        match settle(path, decision) {
            Ok(snap) => writeln!(output, "{verb} {}", snap.display())?,
            Err(e) => {
                failed = true;
                writeln!(output, "error: {}: {e}", path.display())?;
            }
        }
    }
    writeln!(output, "{verb} {} snapshot(s)", pending.len())?;
    Ok(if failed { Exit::Failed } else { Exit::Ok })
}

/// What `review` shows for one pending snapshot: where it is, what step it is, and the
/// diff against the current snapshot (or all of it, for a new one).
pub fn screen(new: &Path) -> String {
    let snap = snap_path(new).unwrap_or_else(|| new.to_owned());
    let pending = SnapFile::read(new);
    let mut out = String::new();
    let pending = match pending {
        Ok(p) => p,
        Err(e) => return format!("{e}\n"),
    };
    let meta = &pending.meta;
    let what = [
        meta.info("scenario").map(|s| format!("scenario {s}")),
        meta.description.as_ref().map(|d| format!("step {d:?}")),
        meta.expression.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    if !what.is_empty() {
        out.push_str(&format!("{what}\n"));
    }
    let (old, label) = match SnapFile::read(&snap) {
        Ok(old) if snap.is_file() => (old.contents, snap.display().to_string()),
        _ => {
            out.push_str("new snapshot (nothing recorded yet)\n");
            (String::new(), "no snapshot".to_owned())
        }
    };
    let text = diff::unified(&old, &pending.contents, &label, &new.display().to_string());
    if text.is_empty() {
        out.push_str("same contents as the snapshot (only the header differs)\n");
    }
    out.push_str(&text);
    out
}

fn review(
    pending: &[PathBuf],
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    colour: bool,
) -> std::io::Result<Exit> {
    if pending.is_empty() {
        writeln!(output, "no pending snapshots")?;
        return Ok(Exit::Ok);
    }
    let (mut accepted, mut rejected, mut skipped) = (0, 0, 0);
    let mut failed = false;
    'files: for (i, path) in pending.iter().enumerate() {
        writeln!(output, "\n[{}/{}] {}", i + 1, pending.len(), path.display())?;
        let screen = screen(path);
        let screen = if colour {
            diff::colour(&screen)
        } else {
            screen
        };
        write!(output, "{screen}")?;
        loop {
            write!(output, "accept (a), reject (r), skip (s), quit (q)? ")?;
            output.flush()?;
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                writeln!(output)?;
                skipped += pending.len() - i;
                break 'files;
            }
            let decision = match line.trim().to_ascii_lowercase().as_str() {
                "a" | "accept" | "y" | "yes" => Some(Decision::Accept),
                "r" | "reject" | "n" | "no" => Some(Decision::Reject),
                "s" | "skip" => None,
                "q" | "quit" => {
                    skipped += pending.len() - i;
                    break 'files;
                }
                _ => {
                    writeln!(output, "answer a, r, s or q")?;
                    continue;
                }
            };
            match decision {
                None => {
                    skipped += 1;
                    writeln!(output, "skipped")?;
                }
                Some(decision) => match settle(path, decision) {
                    Ok(snap) if decision == Decision::Accept => {
                        accepted += 1;
                        writeln!(output, "accepted: {}", snap.display())?;
                    }
                    Ok(_) => {
                        rejected += 1;
                        writeln!(output, "rejected")?;
                    }
                    Err(e) => {
                        failed = true;
                        writeln!(output, "error: {e}")?;
                    }
                },
            }
            break;
        }
    }
    writeln!(
        output,
        "\naccepted {accepted}, rejected {rejected}, skipped {skipped}"
    )?;
    Ok(if failed { Exit::Failed } else { Exit::Ok })
}
