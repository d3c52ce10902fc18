//! The `recall-portal` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    match recall_portal::cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain, one line per cause, without a backtrace: these are messages for
            // the person who started the portal (a missing PostgreSQL, a taken data directory).
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
