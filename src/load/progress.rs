//! While a run measures: once a second the interval closes (a timeline point, a `load.hlog`
//! entry per histogram) and progress shows (a live line on a terminal, a plain line every
//! `--progress-every` otherwise).

use super::metrics::{self, Recorder};
use hdrhistogram::serialization::V2Serializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Once a second: closes the interval (timeline point, `.hlog` entry) and shows progress
/// (a live line on a terminal, a plain line every `every` otherwise).
pub fn spawn_ticker(
    recorder: Arc<Mutex<Recorder>>,
    running: Arc<AtomicBool>,
    hlog: PathBuf,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let file = std::fs::File::create(&hlog);
        let mut file = match file {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("warning: cannot write {}: {e}", hlog.display());
                None
            }
        };
        let mut serializer = V2Serializer::new();
        let mut writer = file.as_mut().and_then(|f| {
            IntervalLogWriterBuilder::new()
                .add_comment("mfa-conform load: latency in microseconds; tag flow = whole flows from the intended start, step:<name> = each step")
                .with_start_time(SystemTime::now())
                .with_base_time(SystemTime::now())
                .with_max_value_divisor(1000.0)
                .begin_log_with(f, &mut serializer)
                .ok()
        });
        let tty = std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
            );
            bar
        });
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        interval.tick().await;
        let mut last_print = Instant::now();
        loop {
            interval.tick().await;
            let done = !running.load(Ordering::SeqCst);
            let elapsed = start.elapsed().as_secs_f64();
            let (h_all, line) = {
                let mut r = recorder.lock().unwrap_or_else(|e| e.into_inner());
                let h = r.tick(elapsed);
                let point = r.timeline.last().cloned();
                let p = metrics::Percentiles::of(&r.flow_corrected);
                let line = format!(
                    "{elapsed:>5.0}s  flows {} ({:.0}/s)  requests {} ({:.0}/s)  p50 {:.1} ms  p99 {:.1} ms  errors {}  failed flows {}",
                    r.flows,
                    point.as_ref().map(|p| p.flows).unwrap_or(0),
                    r.requests,
                    point.as_ref().map(|p| p.requests).unwrap_or(0),
                    p.p50,
                    p.p99,
                    r.request_errors,
                    r.flows_failed
                );
                (h, line)
            };
            if let Some(w) = writer.as_mut() {
                let offset = Duration::from_secs_f64((elapsed - 1.0).max(0.0));
                for (name, histogram) in &h_all {
                    // Tags may not hold spaces or commas.
                    let tag: String = name
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || "-_:.".contains(c) {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    let _ = w.write_histogram(
                        histogram,
                        offset,
                        Duration::from_secs(1),
                        Tag::new(&tag),
                    );
                }
            }
            match &bar {
                Some(bar) => bar.set_message(line),
                None if last_print.elapsed() >= every || done => {
                    eprintln!("{line}");
                    last_print = Instant::now();
                }
                None => {}
            }
            if done {
                if let Some(bar) = bar {
                    bar.finish();
                }
                return;
            }
        }
    })
}
