//! A client that never finishes its request head is disconnected after
//! `limits.header_read_timeout_seconds`, instead of holding a connection for ever; other
//! clients are served meanwhile.

use mfa_conform::server::config::ServerConfig;
use mfa_conform::server::{self, ServeOptions};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_stalled_request_head_is_cut_off_and_others_are_served() {
    let mut config = ServerConfig::default();
    config.limits.header_read_timeout_seconds = 1;
    let running = server::start(
        "127.0.0.1:0".parse().unwrap(),
        ServeOptions {
            config,
            control: true,
            ..ServeOptions::default()
        },
    )
    .await
    .unwrap();
    let addr = running.base_url.trim_start_matches("http://").to_owned();

    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(b"GET /mfa/authenticators HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();

    // Meanwhile a complete request is answered.
    let answer = reqwest::get(format!("{}/.well-known/jwks.json", running.base_url))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut buf))
        .await
        .expect("the stalled connection is closed by the server");
    assert!(read.is_ok() || buf.is_empty(), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "closed after {waited:?}, with a 1-s header read timeout"
    );
    running.shutdown().await;
}
