//! The lookup benchmark's baseline: the least a server can do to answer `GET /check?serial=S`
//! (the lookup page) and `GET /status?serial=S[&gtin=G]` (the JSON status of
//! `/api/v1/status`): actix-web, BASELINE_CONNS (default 4) tokio-postgres connections per
//! worker used in turn, with prepared statements, and the same two indexed reads as the portal,
//! sent together (tokio-postgres pipelines them, one round trip): the units by
//! `serial_key = $1` (or `= $1 OR = $2` for a serial typed in lower case) with their model and
//! lot, and the launched or closed recalls of the units under the same keys (`=` so that
//! PostgreSQL keeps one generic plan). The model's case rule is applied; the answer is a small
//! page with its fields HTML-escaped, or the portal's JSON shape serialized by serde_json
//! (warranty status and end from the unit's dates and the model's terms, recall status from the
//! unit's campaigns).
//!
//! `DATABASE_URL=postgres://… BIND=127.0.0.1:18182 cargo run --release --example baseline`

use std::fmt::Write;

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{Days, Months, NaiveDate};
use serde::Serialize;
use tokio_postgres::{Client, NoTls, Row, Statement};

const COLUMNS: &str = "SELECT u.serial, u.serial_key, m.serials_case_sensitive, m.name, m.brand, m.model_number, m.gtin, \
     l.code, l.production_date, m.sku, u.manufactured_on, m.warranty_months, m.warranty_start_rule, \
     m.warranty_grace_days, u.sold_on, u.purchased_on, u.warranty_extra_months, u.warranty_extended_to, u.id \
     FROM units u JOIN product_models m ON m.id = u.model_id LEFT JOIN lots l ON l.id = u.lot_id";

const RECALLS: &str = "SELECT ru.unit_id, c.code, c.title, c.what_to_do, c.remedy_available, ru.remedied_on \
     FROM recall_units ru JOIN units u ON u.id = ru.unit_id JOIN recall_campaigns c ON c.id = ru.campaign_id \
     WHERE c.status <> 'draft' AND";

/// One connection and its statements: units and recalls, by one key and by two.
struct Conn {
    client: Client,
    one: Statement,
    two: Statement,
    recalls_one: Statement,
    recalls_two: Statement,
}

/// A unit's campaign as the lookup shows it.
struct UnitRecall {
    unit_id: i64,
    code: String,
    title: String,
    what_to_do: String,
    remedy_available: bool,
    remedied_on: Option<NaiveDate>,
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
) -> Result<(Vec<Row>, Vec<UnitRecall>), tokio_postgres::Error> {
    let folded = typed.to_ascii_uppercase();
    let keys = if folded == typed {
        vec![folded.clone()]
    } else {
        vec![typed.to_owned(), folded.clone()]
    };
    let n = db.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let c = &db.conns[n % db.conns.len()];
    let (rows, recalls) = match keys.as_slice() {
        [one] => {
            futures_util::future::try_join(
                c.client.query(&c.one, &[one]),
                c.client.query(&c.recalls_one, &[one]),
            )
            .await?
        }
        [a, b] => {
            futures_util::future::try_join(
                c.client.query(&c.two, &[a, b]),
                c.client.query(&c.recalls_two, &[a, b]),
            )
            .await?
        }
        _ => (Vec::new(), Vec::new()),
    };
    let recalls = recalls
        .iter()
        .map(|r| UnitRecall {
            unit_id: r.get(0),
            code: r.get(1),
            title: r.get(2),
            what_to_do: r.get(3),
            remedy_available: r.get(4),
            remedied_on: r.get(5),
        })
        .collect();
    let rows = rows
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
        .collect();
    Ok((rows, recalls))
}

/// A unit's recall status from its campaigns: any unremedied one is open (its remedy not yet
/// available if any says so); else remedied; else none.
fn recall_status(recalls: &[&UnitRecall]) -> &'static str {
    let open: Vec<bool> = recalls
        .iter()
        .filter(|r| r.remedied_on.is_none())
        .map(|r| r.remedy_available)
        .collect();
    if !open.is_empty() {
        if open.iter().all(|a| *a) {
            "open"
        } else {
            "remedy_not_yet_available"
        }
    } else if recalls.is_empty() {
        "none"
    } else {
        "remedied"
    }
}

async fn check(db: web::Data<Db>, params: web::Query<Params>) -> HttpResponse {
    let typed = params.serial.trim();
    let (rows, recalls) = match lookup(&db, typed, None).await {
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
        let id: i64 = r.get(18);
        let mine: Vec<&UnitRecall> = recalls.iter().filter(|c| c.unit_id == id).collect();
        let _ = write!(
            body,
            "<section><p>Serial number <code>{}</code></p><h1>{} {}</h1><dl><dt>Model</dt><dd>{}</dd><dt>GTIN</dt><dd>{}</dd><dt>Lot</dt><dd>{}</dd></dl></section>",
            escape(serial),
            escape(r.get::<_, &str>(4)),
            escape(r.get::<_, &str>(3)),
            escape(r.get::<_, &str>(5)),
            escape(r.get::<_, &str>(6)),
            escape(lot.as_deref().unwrap_or("-")),
        );
        match recall_status(&mine) {
            "none" => body.push_str("<section><h2>Safety recall: no open recall</h2><p>This unit is not affected by any product safety recall. If that changes we tell registered owners directly.</p></section>"),
            status => {
                let _ = write!(body, "<section><h2>Safety recall: {status}</h2>");
                for c in &mine {
                    let _ = write!(
                        body,
                        "<h3><a href=\"/recalls/{}\">{}</a></h3><p>{}</p><p>Remedied on {}</p>",
                        escape(&c.code),
                        escape(&c.title),
                        escape(&c.what_to_do),
                        c.remedied_on.map(|d| d.to_string()).unwrap_or_default(),
                    );
                }
                body.push_str("</section>");
            }
        }
        let _ = write!(
            body,
            "<section><h2>Warranty: {} months from {}</h2></section>",
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
    recall: Recall<'a>,
    warranty: Warranty,
}

#[derive(Serialize)]
struct Product<'a> {
    name: &'a str,
    brand: &'a str,
    model: &'a str,
}

#[derive(Serialize)]
struct Recall<'a> {
    status: &'static str,
    campaigns: Vec<Campaign<'a>>,
}

#[derive(Serialize)]
struct Campaign<'a> {
    code: &'a str,
    title: &'a str,
    remedy: &'static str,
    remedied_on: Option<NaiveDate>,
    what_to_do: &'a str,
    url: String,
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
    let (rows, recalls) = match lookup(&db, typed, params.gtin.as_deref()).await {
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
            recall: {
                let id: i64 = r.get(18);
                let mine: Vec<&UnitRecall> = recalls.iter().filter(|c| c.unit_id == id).collect();
                Recall {
                    status: recall_status(&mine),
                    campaigns: mine
                        .iter()
                        .map(|c| Campaign {
                            code: &c.code,
                            title: &c.title,
                            remedy: match (c.remedied_on, c.remedy_available) {
                                (Some(_), _) => "remedied",
                                (None, true) => "available",
                                (None, false) => "not_yet_available",
                            },
                            remedied_on: c.remedied_on,
                            what_to_do: &c.what_to_do,
                            url: format!("http://127.0.0.1/recalls/{}", c.code),
                        })
                        .collect(),
                }
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
                        let recalls_one = client
                            .prepare(&format!(
                                "{RECALLS} u.serial_key = $1 ORDER BY c.launched_at DESC"
                            ))
                            .await?;
                        let recalls_two = client
                            .prepare(&format!(
                                "{RECALLS} (u.serial_key = $1 OR u.serial_key = $2) ORDER BY c.launched_at DESC"
                            ))
                            .await?;
                        conns.push(Conn {
                            client,
                            one,
                            two,
                            recalls_one,
                            recalls_two,
                        });
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
