//! A target profile's text through `Target::parse` (the file loader minus the read), with
//! `${VAR}` resolved for a few names. Never a panic; every rejection is a non-empty,
//! located error.
//! The body is `mfa_conform::fuzzing::profile`, which the corpus replay test runs too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mfa_conform::fuzzing::profile(data);
});
