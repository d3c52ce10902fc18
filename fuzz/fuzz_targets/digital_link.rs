#![no_main]
//! A GS1 Digital Link (a whole URL, or a path and query as the resolver gets it).
use libfuzzer_sys::fuzz_target;
use recall_portal::domain::digital_link::DigitalLink;

fuzz_target!(|input: &str| {
    let _ = DigitalLink::parse(input);
});
