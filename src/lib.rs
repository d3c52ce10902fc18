//! Serial-tracked warranty and recall portal: library crate (the binary in `main.rs` is a thin CLI).

pub mod domain;
