//! Scanner stations (`/staff/stations`): receive, move and ship by scanner. One input field
//! takes what a keyboard-wedge scanner types (a GS1 element string with GS characters, a
//! Digital Link URL or a bare serial, then Enter); each scan is checked at once and listed;
//! one commit applies them all. Works without JavaScript (each scan is a form post); with it,
//! `static/station.js` sends scans without reloading so no keystroke is lost between scans.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, render, see_other};
use crate::db::catalogue::Location;
use crate::db::lookup::UnitMatch;
use crate::db::stations::{ScanBatch, ScanItem, StationKind};
use crate::domain::lookup::LookupQuery;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/stations", web::get().to(stations_page))
        .route("/stations", web::post().to(open_station))
        .route("/stations/{id}", web::get().to(station_page))
        .route("/stations/{id}/scan", web::post().to(scan))
        .route("/stations/{id}/items/{item}/remove", web::post().to(remove))
        .route("/stations/{id}/commit", web::post().to(commit))
        .route("/stations/{id}/cancel", web::post().to(cancel));
}

struct OpenBatch {
    id: i64,
    kind: String,
    location: String,
    scans: i64,
}

#[derive(Template)]
#[template(path = "staff/stations.html")]
struct StationsPage {
    csrf_token: String,
    locations: Vec<Location>,
    kind: String,
    location: String,
    reference: String,
    error: Option<String>,
    open: Vec<OpenBatch>,
}

#[derive(Deserialize, Default)]
pub struct OpenForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    reference: String,
}

async fn list_page(
    state: &AppState,
    user: &SignedIn,
    status: StatusCode,
    form: &OpenForm,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let locations = Location::all(&mut conn).await?;
    let open = ScanBatch::open_of(&mut conn, user.account.id)
        .await?
        .into_iter()
        .map(|(b, location, scans)| OpenBatch {
            id: b.id,
            kind: b.kind,
            location,
            scans,
        })
        .collect();
    Ok(render(
        status,
        &StationsPage {
            csrf_token: user.session.csrf_token.clone(),
            locations,
            kind: if form.kind.is_empty() {
                "receive".into()
            } else {
                form.kind.clone()
            },
            location: form.location.clone(),
            reference: form.reference.clone(),
            error,
            open,
        },
    ))
}

async fn stations_page(
    user: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    list_page(&state, &user, StatusCode::OK, &OpenForm::default(), None).await
}

async fn open_station(
    user: SignedIn,
    state: web::Data<AppState>,
    form: CsrfForm<OpenForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.form;
    let refuse = |msg: &str| Some(msg.to_owned());
    let Some(kind) = StationKind::parse(&form.kind) else {
        return list_page(
            &state,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            refuse("Choose receive, move or ship."),
        )
        .await;
    };
    let mut conn = state.pool.get().await?;
    let locations = Location::all(&mut conn).await?;
    let Some(location) = locations.iter().find(|l| l.code == form.location) else {
        drop(conn);
        return list_page(
            &state,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            refuse("Choose a location."),
        )
        .await;
    };
    let reference = form.reference.trim();
    if reference.chars().count() > 64 || reference.chars().any(char::is_control) {
        drop(conn);
        return list_page(
            &state,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            refuse("A reference has at most 64 characters and no control characters."),
        )
        .await;
    }
    let reference = (!reference.is_empty()).then_some(reference);
    let id = ScanBatch::create(&mut conn, kind, location.id, reference, user.account.id).await?;
    Ok(see_other(&format!("/staff/stations/{id}")))
}

struct Line {
    id: i64,
    raw: String,
    unit_id: Option<i64>,
    problem: Option<String>,
    at: String,
}

#[derive(Template)]
#[template(path = "staff/station.html")]
struct StationPage {
    csrf_token: String,
    batch: ScanBatch,
    title: String,
    lines: Vec<Line>,
    ok: usize,
    problems: usize,
    notice: Option<String>,
    error: Option<String>,
}

fn title(kind: StationKind, location: &str) -> String {
    match kind {
        StationKind::Receive => format!("Receive into {location}"),
        StationKind::Move => format!("Move into {location}"),
        StationKind::Ship => format!("Ship from {location}"),
    }
}

async fn load(state: &AppState, user: &SignedIn, id: i64) -> Result<(ScanBatch, String), AppError> {
    let mut conn = state.pool.get().await?;
    ScanBatch::find_own(&mut conn, id, user.account.id)
        .await?
        .ok_or_else(|| {
            AppError::not_found(
                "No such station",
                "There is no scanner station with this number for you. Open one from the stations page.",
            )
        })
}

#[derive(Deserialize)]
pub struct StationQuery {
    committed: Option<usize>,
    error: Option<String>,
}

async fn station_page(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<StationQuery>,
) -> Result<HttpResponse, AppError> {
    let (batch, location) = load(&state, &user, path.into_inner()).await?;
    let mut conn = state.pool.get().await?;
    let items: Vec<ScanItem> = batch.items(&mut conn).await?;
    let problems = items.iter().filter(|i| i.problem.is_some()).count();
    let lines = items
        .into_iter()
        .map(|i| Line {
            id: i.id,
            raw: i.raw,
            unit_id: i.unit_id,
            problem: i.problem,
            at: i.scanned_at.format("%H:%M:%S").to_string(),
        })
        .collect::<Vec<_>>();
    let notice = q.committed.map(|n| {
        format!(
            "Committed: {n} unit(s) {}.",
            match batch.kind() {
                StationKind::Receive => "received",
                StationKind::Move => "moved",
                StationKind::Ship => "shipped",
            }
        )
    });
    let error = q.error.as_deref().map(|e| match e {
        "stale" => "Nothing was committed: some units changed since they were scanned (another station moved, shipped or sold them). Remove those scans and scan them again to see why.".to_owned(),
        "empty" => "Nothing to commit: scan at least one unit without a problem.".to_owned(),
        "closed" => "This station is already committed or cancelled.".to_owned(),
        _ => "Something went wrong; nothing was changed.".to_owned(),
    });
    Ok(render(
        StatusCode::OK,
        &StationPage {
            csrf_token: user.session.csrf_token.clone(),
            title: title(batch.kind(), &location),
            ok: lines.len() - problems,
            problems,
            batch,
            lines,
            notice,
            error,
        },
    ))
}

#[derive(Deserialize)]
pub struct ScanForm {
    #[serde(default)]
    code: String,
}

/// Checks one scan against the records and the batch; returns the unit it names (if any) and
/// the problem (if any).
async fn check_scan(
    state: &AppState,
    batch: &ScanBatch,
    location: &str,
    raw: &str,
) -> Result<(Option<i64>, Option<String>), AppError> {
    let q = match LookupQuery::parse(raw, None) {
        Ok(q) => q,
        Err(e) => return Ok((None, Some(super::capitalise(&e.message)))),
    };
    let gtin = q.gtin.map(|g| g.as_string());
    let mut conn = state.pool.get().await?;
    let found = UnitMatch::find(&conn, &state.catalogue(), &q.serial, gtin.as_deref()).await?;
    let m = match found.as_slice() {
        [] => {
            return Ok((
                None,
                Some(format!(
                    "Unknown: no unit {} is recorded",
                    q.serial.as_str()
                )),
            ));
        }
        [one] => one,
        many => {
            return Ok((
                None,
                Some(format!(
                    "{} exists on {} models: scan the code with the GTIN",
                    q.serial.as_str(),
                    many.len()
                )),
            ));
        }
    };
    if let (Some(scanned), Some(lot)) = (&q.lot, &m.lot)
        && scanned != &lot.code
    {
        return Ok((
            Some(m.unit.id),
            Some(format!(
                "The label says lot {scanned}, the records say lot {}",
                lot.code
            )),
        ));
    }
    if batch.has_unit(&mut conn, m.unit.id).await? {
        return Ok((Some(m.unit.id), Some("Duplicate: already scanned".into())));
    }
    let (location_id, location_code) = unit_location(&mut conn, m.unit.id).await?;
    let problem = batch
        .kind()
        .problem(
            &m.unit.status,
            location_id,
            location_code.as_deref(),
            batch.location_id,
            location,
        )
        .map(|p| super::capitalise(&p));
    Ok((Some(m.unit.id), problem))
}

async fn unit_location(
    conn: &mut diesel_async::AsyncPgConnection,
    unit_id: i64,
) -> Result<(Option<i64>, Option<String>), AppError> {
    use crate::db::schema::{locations, units};
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    Ok(units::table
        .left_join(locations::table)
        .filter(units::id.eq(unit_id))
        .select((units::location_id, locations::code.nullable()))
        .first(conn)
        .await?)
}

async fn scan(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: CsrfForm<ScanForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (batch, location) = load(&state, &user, id).await?;
    if batch.status != "open" {
        return Ok(see_other(&format!("/staff/stations/{id}?error=closed")));
    }
    let raw = form.form.code.trim_end_matches(['\r', '\n']);
    if raw.trim().is_empty() {
        return Ok(see_other(&format!("/staff/stations/{id}")));
    }
    let (unit_id, problem) = check_scan(&state, &batch, &location, raw).await?;
    // What the scanner sent, made visible: the GS separator shown as [GS], at most 80
    // characters (a full GS1 code fits).
    let visible = raw.replace('\u{1d}', "[GS]");
    let shown = if visible.chars().count() > 80 {
        format!("{}…", visible.chars().take(80).collect::<String>())
    } else {
        visible
    };
    let mut conn = state.pool.get().await?;
    batch
        .add(&mut conn, &shown, unit_id, problem.as_deref())
        .await?;
    Ok(see_other(&format!("/staff/stations/{id}")))
}

async fn remove(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    _form: CsrfForm<ScanForm>,
) -> Result<HttpResponse, AppError> {
    let (id, item) = path.into_inner();
    let (batch, _) = load(&state, &user, id).await?;
    if batch.status != "open" {
        return Ok(see_other(&format!("/staff/stations/{id}?error=closed")));
    }
    let mut conn = state.pool.get().await?;
    batch.remove_item(&mut conn, item).await?;
    Ok(see_other(&format!("/staff/stations/{id}")))
}

async fn commit(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    _form: CsrfForm<ScanForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (batch, location) = load(&state, &user, id).await?;
    let mut conn = state.pool.get().await?;
    let has_ok = batch
        .items(&mut conn)
        .await?
        .iter()
        .any(|i| i.problem.is_none());
    if batch.status == "open" && !has_ok {
        return Ok(see_other(&format!("/staff/stations/{id}?error=empty")));
    }
    let actor = format!("{}:{}", user.account.role, user.account.email);
    match batch.commit(&mut conn, &actor).await? {
        Ok(n) => {
            drop(conn);
            super::catalogue::audit(
                &req,
                &state,
                user.account.id,
                "scan_batch_committed",
                &format!("station {id}: {} at {location}, {n} unit(s)", batch.kind),
            )
            .await?;
            Ok(see_other(&format!("/staff/stations/{id}?committed={n}")))
        }
        Err(0) => Ok(see_other(&format!("/staff/stations/{id}?error=closed"))),
        Err(_) => Ok(see_other(&format!("/staff/stations/{id}?error=stale"))),
    }
}

async fn cancel(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    _form: CsrfForm<ScanForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (batch, _) = load(&state, &user, id).await?;
    let mut conn = state.pool.get().await?;
    batch.cancel(&mut conn).await?;
    Ok(see_other("/staff/stations"))
}
