//! The one integration-test binary: every test talks to a real portal over real HTTP, backed by
//! a real PostgreSQL (a throwaway cluster, or TEST_DATABASE_URL), one fresh database per test.

mod a11y;
mod accounts;
mod api;
mod backup;
mod browser;
mod catalogue;
mod claim_reports;
mod claims;
mod counts;
mod embedded;
mod faults;
mod genealogy;
mod helpers;
mod hostile;
mod import;
mod labels;
mod lookup;
mod ownership;
mod platform;
mod recall_reports;
mod recalls;
mod register_flow;
mod registration;
mod reminders;
mod resolver;
mod retention;
mod sales;
mod second_factor;
mod smtp;
mod staff;
mod stations;
mod tls;
mod tokens;
mod warranty;
