//! The template engine on arbitrary text: `render` and `render_json` (as a string, inside
//! an object and a list, and the input itself when it is JSON) against a small context
//! shaped like a scenario's. Never a panic; every error is a non-empty message.
//! The body is `mfa_conform::fuzzing::template`, which the corpus replay test runs too.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mfa_conform::fuzzing::template(data);
});
