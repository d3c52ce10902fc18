#![no_main]
//! A GTIN in any of the forms people type: parsed (check digit right) or refused.
use libfuzzer_sys::fuzz_target;
use recall_portal::domain::gtin::Gtin;

fuzz_target!(|input: &str| {
    for parsed in [
        Gtin::parse(input),
        Gtin::parse_exact(input),
        Gtin::parse_typed(input),
    ] {
        if let Ok(g) = parsed {
            let again = Gtin::parse_exact(&g.as_string()).expect("an accepted GTIN parses again");
            assert_eq!(again.as_string(), g.as_string());
        }
    }
});
