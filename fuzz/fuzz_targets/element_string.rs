#![no_main]
//! A GS1 element string as a scanner sends it (or bracketed): parsed or refused, never a panic.
use libfuzzer_sys::fuzz_target;
use recall_portal::domain::gs1::ElementString;

fuzz_target!(|input: &str| {
    let _ = ElementString::parse(input);
});
