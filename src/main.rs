//! The `recall-portal` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: answering a batch of 1,000 serials makes tens of
/// thousands of small allocations, and glibc's malloc was a third of the portal's CPU time
/// there (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
