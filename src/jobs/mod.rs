//! Background work that runs beside the web server (and alone with the `worker` command).

pub mod import;
pub mod outbox;
pub mod reminders;
