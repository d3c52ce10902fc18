//! How well a recall works, for admins: `/admin/recalls/{id}/effectiveness` (the funnel from
//! affected to remedied, overall and per lot, the correction rate, acknowledgements and
//! remedies over time as SVG with the same figures in tables) and
//! `/admin/recalls/{id}/units.csv` (every affected unit and where it stands, what an authority
//! asks for), streamed in keyset batches so a campaign of a million units never sits in memory
//! whole. The SQL and the definitions are in `db::recall_reports`.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::Stream;

use super::charts::{self, Line, Measure};
use super::session::SignedIn;
use super::{AppError, AppState, render};
use crate::db::DbPool;
use crate::db::recall_reports::{self as reports, Day, Figures, UnitLine};
use crate::db::recalls::Campaign;
use crate::domain::recall::heading;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/recalls/{id}/effectiveness", web::get().to(effectiveness))
        .route("/recalls/{id}/units.csv", web::get().to(units_csv));
}

/// Lots listed on the page; the CSV has every unit whatever the number of lots.
const MAX_LOTS: i64 = 1000;
/// Units per batch of the CSV: one index range scan and about a megabyte of text each.
const BATCH: i64 = 10_000;
/// Day tables up to this long are shown open; longer ones fold away behind their summary.
const OPEN_DAYS: usize = 31;

/// The columns of the export, in order.
const CSV_HEADER: [&str; 11] = [
    "gtin",
    "serial",
    "lot",
    "state",
    "notified",
    "delivered",
    "acknowledged_at",
    "remedy_choice",
    "remedied_on",
    "remedied_by",
    "contact_email",
];

const ACK_COLOUR: &str = "#0b57d0";
const REMEDY_COLOUR: &str = "#1a7f37";

async fn campaign(state: &AppState, id: i64) -> Result<Campaign, AppError> {
    let mut conn = state.pool.get().await?;
    Campaign::find(&mut conn, id).await?.ok_or_else(|| {
        AppError::not_found(
            "No such campaign",
            "There is no recall campaign with this number.",
        )
    })
}

/// One row of the per-lot table.
struct LotRow {
    /// The lot code; empty for the units without a lot.
    lot: String,
    product: String,
    gtin: String,
    f: Figures,
    rate: String,
}

#[derive(Template)]
#[template(path = "admin/recall_effectiveness.html")]
struct EffectivenessPage {
    c: Campaign,
    heading: String,
    /// A draft: nothing to measure yet, only the message and the way back.
    draft: bool,
    launched_on: String,
    overall: Figures,
    rate: String,
    /// Built by `charts::measure_chart`, which escapes every label.
    funnel_chart: String,
    lots: Vec<LotRow>,
    /// How many lot rows there are in all.
    lots_total: i64,
    /// Fewer lots are listed than there are.
    lots_cut: bool,
    /// Built by `charts::line_chart`, which escapes every label.
    time_chart: String,
    days: Vec<Day>,
    days_open: bool,
}

async fn effectiveness(
    _user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let c = campaign(&state, path.into_inner()).await?;
    let head = heading(&c.title);
    let launched_at = match (c.status.as_str(), c.launched_at) {
        ("launched" | "closed", Some(t)) => t,
        _ => {
            // A draft has no affected units yet: say so, and where its preview is.
            return Ok(render(
                StatusCode::NOT_FOUND,
                &EffectivenessPage {
                    heading: head,
                    draft: true,
                    launched_on: String::new(),
                    overall: Figures::default(),
                    rate: String::new(),
                    funnel_chart: String::new(),
                    lots: Vec::new(),
                    lots_total: 0,
                    lots_cut: false,
                    time_chart: String::new(),
                    days: Vec::new(),
                    days_open: false,
                    c,
                },
            ));
        }
    };
    let today = chrono::Utc::now().date_naive();
    let mut conn = state.pool.get().await?;
    let overall = reports::overall(&mut conn, c.id).await?;
    let per_lot = reports::per_lot(&mut conn, c.id, MAX_LOTS).await?;
    let days = reports::by_day(&mut conn, c.id, launched_at, today).await?;
    drop(conn);

    let lots_total = per_lot.first().map_or(0, |l| l.lots);
    let lots_cut = lots_total > per_lot.len() as i64;
    let lots = per_lot
        .into_iter()
        .map(|l| LotRow {
            lot: match (l.lot, l.lot_id) {
                (Some(code), _) => code,
                // The lot row is gone; the unit kept its id.
                (None, Some(id)) => format!("#{id}"),
                (None, None) => String::new(),
            },
            product: l.product.unwrap_or_default(),
            gtin: l.gtin.unwrap_or_default(),
            rate: l.figures.correction_rate(),
            f: l.figures,
        })
        .collect();
    let funnel: Vec<Measure> = [
        ("Affected", overall.affected),
        ("Reachable", overall.reachable),
        ("Notified", overall.notified),
        ("Delivered", overall.delivered),
        ("Acknowledged", overall.acknowledged),
        ("Remedied", overall.remedied),
        ("Unreachable", overall.unreachable),
    ]
    .into_iter()
    .map(|(label, n)| Measure {
        label: label.to_owned(),
        value: n as f64,
        text: n.to_string(),
    })
    .collect();
    let funnel_chart = charts::measure_chart(
        "funnel-title",
        &format!(
            "Where the {} affected units of {} stand",
            overall.affected, c.code
        ),
        &funnel,
    );
    let x: Vec<String> = days.iter().map(|d| d.day.to_string()).collect();
    let time_chart = charts::line_chart(
        "over-time-title",
        &format!(
            "{}: units acknowledged and remedied, in all, by day since the launch",
            c.code
        ),
        &x,
        &[
            Line {
                name: "Acknowledged".into(),
                values: days.iter().map(|d| d.acknowledged_total).collect(),
                colour: ACK_COLOUR,
                dashed: true,
            },
            Line {
                name: "Remedied".into(),
                values: days.iter().map(|d| d.remedied_total).collect(),
                colour: REMEDY_COLOUR,
                dashed: false,
            },
        ],
    );
    Ok(render(
        StatusCode::OK,
        &EffectivenessPage {
            heading: head,
            draft: false,
            launched_on: launched_at.date_naive().to_string(),
            rate: overall.correction_rate(),
            overall,
            funnel_chart,
            lots,
            lots_total,
            lots_cut,
            time_chart,
            days_open: days.len() <= OPEN_DAYS,
            days,
            c,
        },
    ))
}

/// The export: recorded in the security log (it carries owners' contacts), then streamed.
async fn units_csv(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let c = campaign(&state, path.into_inner()).await?;
    if c.status == "draft" {
        return Err(AppError::not_found(
            "Nothing to export yet",
            "This campaign is a draft: its affected units are recorded when it is launched. Until then its page shows the preview count.",
        ));
    }
    let mut conn = state.pool.get().await?;
    let units = reports::unit_count(&mut conn, c.id).await?;
    drop(conn);
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "recall_units_exported",
        &format!("{}: {units} unit(s)", c.code),
    )
    .await?;
    // The code is capitals, digits and dashes only (domain::recall::parse_code and the
    // table's CHECK), so it is safe inside the quoted file name.
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"recall-{}-units.csv\"", c.code),
        ))
        .streaming(unit_lines(state.pool.clone(), c.id)))
}

/// Where the export stands between two chunks.
enum Next {
    Header,
    After(i64),
    Done,
}

/// The header, then one chunk per keyset batch. Each batch takes a pooled connection only while
/// it is read, so a slow download holds no connection; each row is as it stood when its batch
/// was read (the set of units itself never changes after the launch). A failure part-way is
/// logged and ends the download early (the status line has gone out already), so the file is
/// visibly cut short rather than silently complete.
fn unit_lines(pool: DbPool, campaign_id: i64) -> impl Stream<Item = anyhow::Result<Bytes>> {
    futures_util::stream::unfold(Next::Header, move |next| {
        let pool = pool.clone();
        async move {
            match next {
                Next::Done => None,
                Next::Header => Some((
                    csv_chunk(std::iter::once(CSV_HEADER.map(str::to_owned).to_vec())),
                    Next::After(i64::MIN),
                )),
                Next::After(after) => match batch(&pool, campaign_id, after).await {
                    Ok(lines) if lines.is_empty() => None,
                    Ok(lines) => {
                        let next = match lines.last() {
                            Some(last) if lines.len() as i64 == BATCH => Next::After(last.unit_id),
                            _ => Next::Done,
                        };
                        Some((csv_chunk(lines.into_iter().map(record)), next))
                    }
                    Err(e) => {
                        tracing::error!(campaign_id, error = %e, "recall unit export failed part-way");
                        Some((Err(e), Next::Done))
                    }
                },
            }
        }
    })
}

async fn batch(pool: &DbPool, campaign_id: i64, after: i64) -> anyhow::Result<Vec<UnitLine>> {
    let mut conn = pool.get().await?;
    Ok(reports::units_after(&mut conn, campaign_id, after, BATCH).await?)
}

fn csv_chunk(records: impl Iterator<Item = Vec<String>>) -> anyhow::Result<Bytes> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in records {
        w.write_record(&r)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Bytes::from(bytes))
}

/// One unit as a CSV record, in [`CSV_HEADER`]'s order.
fn record(u: UnitLine) -> Vec<String> {
    vec![
        u.gtin,
        u.serial,
        u.lot.unwrap_or_default(),
        u.state,
        u.notified.to_string(),
        u.delivered.to_string(),
        u.acknowledged_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default(),
        u.remedy_choice.unwrap_or_default(),
        u.remedied_on.map(|d| d.to_string()).unwrap_or_default(),
        u.remedied_by.unwrap_or_default(),
        u.contact_email.unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_follows_the_header_and_quotes_what_needs_it() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-05-02T10:11:12Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let line = UnitLine {
            unit_id: 7,
            gtin: "09506000134352".into(),
            serial: "A,\"B\"".into(),
            lot: None,
            state: "acknowledged".into(),
            notified: true,
            delivered: false,
            acknowledged_at: Some(t),
            remedy_choice: Some("refund".into()),
            remedied_on: None,
            remedied_by: None,
            contact_email: Some("ann@example.com".into()),
        };
        let r = record(line);
        assert_eq!(r.len(), CSV_HEADER.len());
        let text = String::from_utf8(csv_chunk(std::iter::once(r)).unwrap().to_vec()).unwrap();
        assert_eq!(
            text,
            "09506000134352,\"A,\"\"B\"\"\",,acknowledged,true,false,2026-05-02 10:11:12 UTC,refund,,,ann@example.com\n"
        );
    }
}
