//! The `recall-portal` binary: parses the command line and hands over to the library.

fn main() -> anyhow::Result<()> {
    recall_portal::cli::run()
}
