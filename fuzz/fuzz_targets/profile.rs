//! A target profile's text through `Target::parse` (the file loader minus the read), with
//! `${VAR}` resolved for a few names. Never a panic; every rejection is a non-empty,
//! located error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mfa_conform::scenario::load::normalize_line_breaks;
use mfa_conform::target::Target;
use std::path::Path;

fn env(name: &str) -> Option<String> {
    match name {
        "SECRET" => Some("s3cr3t".to_owned()),
        "URL" => Some("http://127.0.0.1:9".to_owned()),
        "MULTI" => Some("a\nb: c".to_owned()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Target::parse(Path::new("profile.yaml"), text, env) {
        Ok(target) => {
            assert_eq!(target.name, "profile");
            let _ = target.audience();
            assert!(!target.base_url().is_empty() || target.profile.base_url.is_empty());
        }
        Err(error) => {
            assert!(!error.message.trim().is_empty(), "empty message: {error:?}");
            // YAML counts a lone CR as a line break too.
            let lines = normalize_line_breaks(text).lines().count() as u64 + 1;
            assert!(
                (1..=lines).contains(&error.line) && error.column >= 1,
                "location {}:{} outside the input ({lines} lines): {error}",
                error.line,
                error.column
            );
            assert!(error.to_string().starts_with("profile.yaml:"));
        }
    }
});
