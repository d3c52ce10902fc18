#![no_main]
//! A serial number as typed or scanned: parsed or refused with a reason, never a panic; what is
//! accepted parses again to itself.
use libfuzzer_sys::fuzz_target;
use recall_portal::domain::serial::SerialNumber;

fuzz_target!(|input: &str| {
    for parsed in [SerialNumber::parse(input), SerialNumber::parse_typed(input)] {
        if let Ok(s) = parsed {
            let again = SerialNumber::parse(s.as_str()).expect("an accepted serial parses again");
            assert_eq!(again.as_str(), s.as_str());
            let _ = s.folded();
        }
    }
});
