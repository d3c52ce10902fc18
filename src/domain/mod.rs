//! Pure domain types and rules: identifiers, GS1 syntaxes, lookups, warranty. No I/O here.

pub mod account;
pub mod api_token;
pub mod claims;
pub mod counts;
pub mod digital_link;
pub mod genealogy;
pub mod gs1;
pub mod gtin;
pub mod import;
pub mod labels;
pub mod lookup;
pub mod picture;
pub mod proof;
pub mod recall;
pub mod sales;
pub mod serial;
pub mod serial_format;
pub mod totp;
pub mod warranty;

pub use gtin::Gtin;
pub use serial::SerialNumber;
