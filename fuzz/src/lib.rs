//! The portal's parsers of hostile input, compiled on their own for fuzzing: the very source
//! files of `src/domain`, without the web server, the database or anything else, so that an
//! instrumented build takes seconds and fits in CI. Named `recall_portal` so each target reads
//! as if it used the portal itself.

#[path = "../../src/domain/digital_link.rs"]
pub mod digital_link;
#[path = "../../src/domain/gs1.rs"]
pub mod gs1;
#[path = "../../src/domain/gtin.rs"]
pub mod gtin;
#[path = "../../src/domain/import.rs"]
pub mod import;
#[path = "../../src/domain/lookup.rs"]
pub mod lookup;
#[path = "../../src/domain/picture.rs"]
pub mod picture;
#[path = "../../src/domain/proof.rs"]
pub mod proof;
#[path = "../../src/domain/serial.rs"]
pub mod serial;
#[path = "../../src/domain/serial_format.rs"]
pub mod serial_format;

/// As the portal has them (`recall_portal::domain::…`).
pub mod domain {
    pub use super::{
        digital_link, gs1, gtin, import, lookup, picture, proof, serial, serial_format,
    };
}
