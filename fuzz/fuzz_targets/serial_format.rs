#![no_main]
//! A model's declared serial format, and a serial checked against it.
use libfuzzer_sys::fuzz_target;
use recall_portal::domain::serial_format::SerialFormat;

fuzz_target!(|input: (&str, &str, bool)| {
    if let Ok(f) = SerialFormat::parse(input.0) {
        let _ = f.describe();
        let example = f.example();
        assert!(
            f.matches(&example, true),
            "its own example matches {}",
            input.0
        );
        let _ = f.matches(input.1, input.2);
    }
});
