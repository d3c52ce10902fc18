//! Serial-tracked warranty and recall portal: library crate (the binary in `main.rs` is a thin CLI).
//!
//! `domain/` pure rules and types, `db/` PostgreSQL (schema, queries, embedded cluster),
//! `web/` HTTP routes and pages, `cli` the command line.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod files;
pub mod jobs;
pub mod mail;
pub mod passwords;
pub mod tokens;
pub mod web;
