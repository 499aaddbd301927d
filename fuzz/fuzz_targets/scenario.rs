//! One scenario file's text through the same parse + validate as `Suite::load`, against
//! the committed catalogue. Never a panic; every rejection is a non-empty, located error.
//! The body is `mfa_conform::fuzzing::scenario`, which the corpus replay test runs too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mfa_conform::fuzzing::scenario(data);
});
