#![no_main]
//! The lookup box: a serial (or a scanned code or pasted link) and an optional GTIN.
use libfuzzer_sys::fuzz_target;
use recall_portal::domain::lookup::LookupQuery;

fuzz_target!(|input: (&str, Option<&str>)| {
    let _ = LookupQuery::parse(input.0, input.1);
});
