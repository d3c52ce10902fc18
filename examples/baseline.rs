//! The lookup benchmark's baseline: the least a server can do to answer `GET /check?serial=S`:
//! actix-web, one tokio-postgres connection per worker with a prepared statement, the same
//! indexed query as the portal, and a small page with its fields HTML-escaped.
//!
//! `DATABASE_URL=postgres://… BIND=127.0.0.1:18182 cargo run --release --example baseline`

use std::fmt::Write;

use actix_web::{App, HttpResponse, HttpServer, web};
use tokio_postgres::{Client, NoTls, Statement};

const SQL: &str = "SELECT u.serial, u.serial_key, m.serials_case_sensitive, m.name, m.brand, m.model_number, m.gtin, \
     l.code, l.production_date, l.expiry_date, u.manufactured_on, m.warranty_months \
     FROM units u JOIN product_models m ON m.id = u.model_id LEFT JOIN lots l ON l.id = u.lot_id \
     WHERE u.serial_key = ANY($1)";

struct Db {
    client: Client,
    lookup: Statement,
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
}

async fn check(db: web::Data<Db>, params: web::Query<Params>) -> HttpResponse {
    let typed = params.serial.trim().to_owned();
    let folded = typed.to_ascii_uppercase();
    let rows = match db
        .client
        .query(&db.lookup, &[&vec![typed.clone(), folded.clone()]])
        .await
    {
        Ok(r) => r,
        Err(e) => return HttpResponse::InternalServerError().body(e.to_string()),
    };
    let mut body = String::with_capacity(2048);
    body.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Product check</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><header><a href=\"/\">Product safety &amp; warranty</a></header><main>");
    let mut found = 0;
    for r in rows {
        let (serial, key, cs): (String, String, bool) = (r.get(0), r.get(1), r.get(2));
        if (cs && serial != typed) || (!cs && key != folded) {
            continue;
        }
        found += 1;
        let lot: Option<String> = r.get(7);
        let made: Option<chrono::NaiveDate> = r.get(10);
        let months: i32 = r.get(11);
        let _ = write!(
            body,
            "<section><p>Serial number <code>{}</code></p><h1>{} {}</h1><dl><dt>Model</dt><dd>{}</dd><dt>GTIN</dt><dd>{}</dd><dt>Lot</dt><dd>{}</dd></dl></section>\
             <section><h2>Safety recall: no open recall</h2><p>This unit is not affected by any product safety recall. If that changes we tell registered owners directly.</p></section>\
             <section><h2>Warranty: {} months from {}</h2></section>",
            escape(&serial),
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
                    let (client, conn) = tokio_postgres::connect(&url, NoTls).await?;
                    actix_web::rt::spawn(async move {
                        let _ = conn.await;
                    });
                    let lookup = client.prepare(SQL).await?;
                    Ok::<_, tokio_postgres::Error>(Db { client, lookup })
                }
            })
            .route("/check", web::get().to(check))
    })
    .bind(bind)?
    .run()
    .await
}
