//! The connections each HTTP worker keeps for the public lookups, shared by all of that worker's
//! lookups at once.
//!
//! A lookup is one or two short reads. Taken from the pool, each read holds a connection of
//! its own for a full round trip, and PostgreSQL wakes, reads one message, answers and sleeps
//! again for every one of them. Here a worker's lookups send their statements down the same few
//! connections without waiting for each other's answers (tokio-postgres pipelines them):
//! PostgreSQL reads and answers them in batches. At 10,000,000 units this took `/check` from
//! about 5,200 to about 9,200 requests/s on 2 cores (BENCHMARKS.md, "Lookup").
//!
//! Only single read-only statements belong here: no transactions (the statements of different
//! lookups interleave), nothing that writes. The connections are the worker's own (not `Send`),
//! so their background tasks run on the worker's thread, beside the requests that use them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use diesel::QueryResult;
use diesel::result::{DatabaseErrorKind, Error};
use diesel_async::AsyncPgConnection;
use tokio::sync::Semaphore;

use super::DbPool;

/// How long a lookup may wait for its connection and answers before it is a 503.
const WAIT: Duration = Duration::from_secs(5);

/// Statements one connection may have in flight: past that, a lookup waits for room (and after
/// [`WAIT`], gives up) instead of queueing without bound in front of a busy database.
const DEPTH: usize = 32;

/// One HTTP worker's shared read connections (see the module documentation).
pub struct Readers {
    /// Without a database URL (never in `serve`), lookups take pooled connections.
    url: Option<String>,
    slots: Vec<RefCell<Option<Rc<AsyncPgConnection>>>>,
    next: Cell<usize>,
    room: Semaphore,
}

/// The error of a read that could not be made: a 503, like a pool that cannot give a
/// connection (see [`super::is_unavailable`]).
fn unavailable(why: String) -> Error {
    Error::DatabaseError(
        DatabaseErrorKind::UnableToSendCommand,
        Box::new(format!("lookup connection unavailable: {why}")),
    )
}

impl Readers {
    /// `connections` (at least one) opened on first use, to `url`.
    pub fn new(url: Option<String>, connections: usize) -> Self {
        let n = connections.max(1);
        Readers {
            url,
            slots: (0..n).map(|_| RefCell::new(None)).collect(),
            next: Cell::new(0),
            room: Semaphore::new(n * DEPTH),
        }
    }

    /// The connection of slot `i`, opened when it is not.
    async fn connection(&self, url: &str, i: usize) -> QueryResult<Rc<AsyncPgConnection>> {
        if let Some(conn) = self.slots[i].borrow().as_ref() {
            return Ok(Rc::clone(conn));
        }
        let conn = Rc::new(
            crate::db::tls::connect(url)
                .await
                .map_err(|e| unavailable(e.to_string()))?,
        );
        *self.slots[i].borrow_mut() = Some(Rc::clone(&conn));
        Ok(conn)
    }

    /// Empties slot `i` if it still holds `conn`.
    fn forget(&self, i: usize, conn: &Rc<AsyncPgConnection>) {
        let mut slot = self.slots[i].borrow_mut();
        if slot.as_ref().is_some_and(|c| Rc::ptr_eq(c, conn)) {
            *slot = None;
        }
    }

    /// Runs the reads of `f` on one of the worker's connections in turn, pipelined with the
    /// other lookups on it, within [`WAIT`] or a 503. When the database has dropped that
    /// connection (a restart), `f` runs once more on a new one: it only reads.
    pub async fn run<T>(
        &self,
        pool: &DbPool,
        f: impl AsyncFn(&AsyncPgConnection) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let Some(url) = self.url.as_deref() else {
            let conn = pool.get().await.map_err(|e| unavailable(e.to_string()))?;
            return f(&conn).await;
        };
        let work = async {
            let _room = self
                .room
                .acquire()
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            let i = self.next.get() % self.slots.len();
            self.next.set(i + 1);
            let conn = self.connection(url, i).await?;
            match f(&conn).await {
                Err(e) if super::is_unavailable(&e) => {
                    self.forget(i, &conn);
                    let conn = self.connection(url, i).await?;
                    let again = f(&conn).await;
                    if again.as_ref().is_err_and(super::is_unavailable) {
                        self.forget(i, &conn);
                    }
                    again
                }
                done => done,
            }
        };
        tokio::time::timeout(WAIT, work)
            .await
            .unwrap_or_else(|_| Err(unavailable("no answer within 5 s".into())))
    }
}
