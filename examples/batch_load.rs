//! The batch benchmark's load generator: serials looked up per second, either through the
//! portal's `POST /api/v1/status/batch` or with the bare query a batch needs at least (units by
//! `serial_key = ANY($1)`, prepared, straight on PostgreSQL). Batches of `BATCH` random existing
//! serials of the benchmark data set (`bench/dataset.sql`: `BC00000000 … BC(UNITS-1)`, eight
//! digits), `CONNS` at a time, for `SECS` seconds; prints one JSON line.
//!
//! `MODE=api URL=http://127.0.0.1:18183 cargo run --release --example batch_load`
//! `MODE=sql DATABASE_URL=postgres://… cargo run --release --example batch_load`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;

const SQL: &str = "SELECT u.id, u.serial, u.serial_key, u.model_id, u.lot_id FROM units u \
                   WHERE u.serial_key = ANY($1)";

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// xorshift64*: enough randomness to spread serials, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn serials(&mut self, n: usize, units: u64) -> Vec<String> {
        (0..n)
            .map(|_| format!("BC{:08}", self.next() % units))
            .collect()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = env("MODE", "api");
    let units: u64 = env("UNITS", "10000000").parse()?;
    let batch: usize = env("BATCH", "1000").parse()?;
    let conns: usize = env("CONNS", "4").parse()?;
    let secs: u64 = env("SECS", "20").parse()?;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conns {
        let stop = Arc::clone(&stop);
        let mode = mode.clone();
        let mut rng =
            Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<Duration> = Vec::new();
            let mut serials_done = 0usize;
            let mut errors = 0usize;
            match mode.as_str() {
                "sql" => {
                    let url = env("DATABASE_URL", "");
                    let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
                    tokio::spawn(conn);
                    let stmt = client.prepare(SQL).await?;
                    while !stop.load(Ordering::Relaxed) {
                        let keys = rng.serials(batch, units);
                        let t = Instant::now();
                        let rows = client.query(&stmt, &[&keys]).await?;
                        latencies.push(t.elapsed());
                        serials_done += batch;
                        if rows.is_empty() {
                            errors += 1;
                        }
                    }
                }
                _ => {
                    let base = env("URL", "http://127.0.0.1:18183");
                    let client = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let items: Vec<_> = rng
                            .serials(batch, units)
                            .into_iter()
                            .map(|s| serde_json::json!({ "serial": s }))
                            .collect();
                        let body = serde_json::json!({ "items": items }).to_string();
                        let t = Instant::now();
                        let r = client
                            .post(format!("{base}/api/v1/status/batch"))
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await?;
                        let ok = r.status().is_success();
                        let text = r.text().await?;
                        latencies.push(t.elapsed());
                        // Every serial exists: each result has a match.
                        if ok && text.matches("\"matches\":[{").count() == batch {
                            serials_done += batch;
                        } else {
                            errors += 1;
                        }
                    }
                }
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((latencies, serials_done, errors))
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let (mut serials, mut errors) = (0usize, 0usize);
    for t in tasks {
        let (l, s, e) = t.await?.map_err(|e| e.to_string())?;
        all.extend(l);
        serials += s;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "mode": mode,
            "batches": all.len(),
            "serials": serials,
            "errors": errors,
            "seconds": elapsed,
            "serials_per_sec": serials as f64 / elapsed,
            "p50_ms": pct(0.5),
            "p99_ms": pct(0.99),
        })
    );
    Ok(())
}
