//! The lookup benchmark's baseline: the least a server can do to answer `GET /check?serial=S`
//! (the lookup page) and `GET /status?serial=S[&gtin=G]` (the JSON status of
//! `/api/v1/status`): actix-web, BASELINE_CONNS (default 4) tokio-postgres connections per
//! worker used in turn, with prepared statements, the same indexed query as the portal (units
//! by `serial_key = $1`, or `= $1 OR = $2` for a serial typed in lower case, with their model
//! and lot, the model's case rule applied; `=` so that PostgreSQL keeps one generic plan), and a small page with its fields HTML-escaped
//! or the portal's JSON shape serialized by serde_json (warranty status and end from the unit's
//! dates and the model's terms; no recall query, so always no recall).
//!
//! `DATABASE_URL=postgres://… BIND=127.0.0.1:18182 cargo run --release --example baseline`

use std::fmt::Write;

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{Days, Months, NaiveDate};
use serde::Serialize;
use tokio_postgres::{Client, NoTls, Row, Statement};

const COLUMNS: &str = "SELECT u.serial, u.serial_key, m.serials_case_sensitive, m.name, m.brand, m.model_number, m.gtin, \
     l.code, l.production_date, m.sku, u.manufactured_on, m.warranty_months, m.warranty_start_rule, \
     m.warranty_grace_days, u.sold_on, u.purchased_on, u.warranty_extra_months, u.warranty_extended_to \
     FROM units u JOIN product_models m ON m.id = u.model_id LEFT JOIN lots l ON l.id = u.lot_id";

/// One connection and its two statements: one key, two keys.
struct Conn {
    client: Client,
    one: Statement,
    two: Statement,
}

struct Db {
    conns: Vec<Conn>,
    next: std::sync::atomic::AtomicUsize,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct Params {
    serial: String,
    gtin: Option<String>,
}

/// The units stored under the serial as typed or folded to upper case, of which those that are
/// the serial under their model's case rule (and on `gtin`, when given).
async fn lookup(
    db: &Db,
    typed: &str,
    gtin: Option<&str>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let folded = typed.to_ascii_uppercase();
    let keys = if folded == typed {
        vec![folded.clone()]
    } else {
        vec![typed.to_owned(), folded.clone()]
    };
    let n = db.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let c = &db.conns[n % db.conns.len()];
    let rows = match keys.as_slice() {
        [one] => c.client.query(&c.one, &[one]).await?,
        [a, b] => c.client.query(&c.two, &[a, b]).await?,
        _ => Vec::new(),
    };
    Ok(rows
        .into_iter()
        .filter(|r| {
            let cs: bool = r.get(2);
            let matches = if cs {
                r.get::<_, &str>(0) == typed
            } else {
                r.get::<_, &str>(1) == folded
            };
            matches && gtin.is_none_or(|g| r.get::<_, &str>(6) == g)
        })
        .collect())
}

async fn check(db: web::Data<Db>, params: web::Query<Params>) -> HttpResponse {
    let typed = params.serial.trim();
    let rows = match lookup(&db, typed, None).await {
        Ok(r) => r,
        Err(e) => return HttpResponse::InternalServerError().body(e.to_string()),
    };
    let mut body = String::with_capacity(2048);
    body.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Product check</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><header><a href=\"/\">Product safety &amp; warranty</a></header><main>");
    let mut found = 0;
    for r in rows {
        let serial: &str = r.get(0);
        found += 1;
        let lot: Option<String> = r.get(7);
        let made: Option<NaiveDate> = r.get::<_, Option<NaiveDate>>(10).or(r.get(8));
        let months: i32 = r.get(11);
        let _ = write!(
            body,
            "<section><p>Serial number <code>{}</code></p><h1>{} {}</h1><dl><dt>Model</dt><dd>{}</dd><dt>GTIN</dt><dd>{}</dd><dt>Lot</dt><dd>{}</dd></dl></section>\
             <section><h2>Safety recall: no open recall</h2><p>This unit is not affected by any product safety recall. If that changes we tell registered owners directly.</p></section>\
             <section><h2>Warranty: {} months from {}</h2></section>",
            escape(serial),
            escape(r.get::<_, &str>(4)),
            escape(r.get::<_, &str>(3)),
            escape(r.get::<_, &str>(5)),
            escape(r.get::<_, &str>(6)),
            escape(lot.as_deref().unwrap_or("-")),
            months,
            made.map(|d| d.to_string()).unwrap_or_default(),
        );
    }
    body.push_str("<section><h2>What next</h2><ul><li>Keep the serial number with your receipt; you need both for a warranty claim.</li><li><a href=\"/\">Check another product</a></li></ul></section></main><footer><p>Check any product by its serial number. We never show who owns a product.</p></footer></body></html>");
    if found == 0 {
        return HttpResponse::NotFound()
            .content_type("text/html; charset=utf-8")
            .body(body);
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// The JSON of `GET /api/v1/status`, the same fields.
#[derive(Serialize)]
struct StatusAnswer<'a> {
    query: QueryEcho<'a>,
    matches: Vec<Match<'a>>,
}

#[derive(Serialize)]
struct QueryEcho<'a> {
    serial: &'a str,
    gtin: Option<&'a str>,
}

#[derive(Serialize)]
struct Match<'a> {
    gtin: &'a str,
    serial: &'a str,
    product: Product<'a>,
    recall: Recall,
    warranty: Warranty,
}

#[derive(Serialize)]
struct Product<'a> {
    name: &'a str,
    brand: &'a str,
    model: &'a str,
}

#[derive(Serialize)]
struct Recall {
    status: &'static str,
    campaigns: [(); 0],
}

#[derive(Serialize)]
struct Warranty {
    status: &'static str,
    ends_on: Option<NaiveDate>,
}

/// The warranty from the model's terms and the unit's dates: from the sale (else the purchase,
/// else manufacture plus the grace days), or from manufacture; the term plus extra months, or a
/// later end.
fn warranty(r: &Row, today: NaiveDate) -> Warranty {
    let made: Option<NaiveDate> = r.get::<_, Option<NaiveDate>>(10).or(r.get(8));
    let start = if r.get::<_, &str>(12) == "manufacture" {
        made
    } else {
        let grace = u64::try_from(r.get::<_, i32>(13)).unwrap_or(0);
        r.get::<_, Option<NaiveDate>>(14)
            .or(r.get(15))
            .or(made.and_then(|m| m.checked_add_days(Days::new(grace))))
    };
    let Some(start) = start else {
        return Warranty {
            status: "unknown",
            ends_on: None,
        };
    };
    let months = u32::try_from(r.get::<_, i32>(11) + r.get::<_, i32>(16)).unwrap_or(0);
    let term = start
        .checked_add_months(Months::new(months))
        .and_then(|d| d.pred_opt());
    let end = term.max(r.get(17)).unwrap_or(start);
    let status = if today < start {
        "not_started"
    } else if today <= end {
        "active"
    } else {
        "expired"
    };
    Warranty {
        status,
        ends_on: Some(end),
    }
}

async fn status(db: web::Data<Db>, params: web::Query<Params>) -> HttpResponse {
    let typed = params.serial.trim();
    let rows = match lookup(&db, typed, params.gtin.as_deref()).await {
        Ok(r) => r,
        Err(e) => {
            return HttpResponse::InternalServerError().json(
                serde_json::json!({ "error": { "code": "internal", "message": e.to_string() } }),
            );
        }
    };
    let today = chrono::Utc::now().date_naive();
    let mut matches: Vec<Match> = rows
        .iter()
        .map(|r| Match {
            gtin: r.get(6),
            serial: r.get(0),
            product: Product {
                name: r.get(3),
                brand: r.get(4),
                model: r.get(9),
            },
            recall: Recall {
                status: "none",
                campaigns: [],
            },
            warranty: warranty(r, today),
        })
        .collect();
    matches
        .sort_by(|a, b| (a.product.brand, a.product.name).cmp(&(b.product.brand, b.product.name)));
    HttpResponse::Ok()
        .insert_header(("access-control-allow-origin", "*"))
        .json(StatusAnswer {
            query: QueryEcho {
                serial: &params.serial,
                gtin: params.gtin.as_deref(),
            },
            matches,
        })
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:18182".into());
    println!("baseline listening on http://{bind}");
    HttpServer::new(move || {
        let url = url.clone();
        App::new()
            .data_factory(move || {
                let url = url.clone();
                async move {
                    let per_worker: usize = std::env::var("BASELINE_CONNS")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(4);
                    let mut conns = Vec::new();
                    for _ in 0..per_worker.max(1) {
                        let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
                        actix_web::rt::spawn(async move {
                            let _ = conn.await;
                        });
                        let one = client
                            .prepare(&format!("{COLUMNS} WHERE u.serial_key = $1"))
                            .await?;
                        let two = client
                            .prepare(&format!(
                                "{COLUMNS} WHERE u.serial_key = $1 OR u.serial_key = $2"
                            ))
                            .await?;
                        conns.push(Conn { client, one, two });
                    }
                    Ok::<_, tokio_postgres::Error>(Db {
                        conns,
                        next: std::sync::atomic::AtomicUsize::new(0),
                    })
                }
            })
            .route("/check", web::get().to(check))
            .route("/status", web::get().to(status))
    })
    .bind(bind)?
    .run()
    .await
}
