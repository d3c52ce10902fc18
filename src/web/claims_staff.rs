//! A claim for service staff (`/staff/claims/{id}`): the customer's report, the unit's history
//! and warranty, the flags, every event (internal notes marked), and the actions: move it on
//! (the state machine decides what is offered and what is accepted), a public update (mailed)
//! or an internal note, the estimate, the RMA, the assignee.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::claims::{TimelineEntry, describe, photo_response};
use super::session::{CsrfForm, SignedIn};
use super::views::long_date;
use super::{AppError, AppState, render, see_other};
use crate::db::claims::{self as db, Change, Claim, Move, Photo, Refused, Replacement};
use crate::db::lookup::{UnitHistory, UnitMatch};
use crate::domain::claims::{Actor, Needs, Status, category_label, needs};
use crate::domain::lookup::LookupQuery;
use crate::domain::warranty::WarrantyStatus;
use crate::mail::messages;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/claims/{id}", web::get().to(page))
        .route("/claims/{id}/move", web::post().to(move_on))
        .route("/claims/{id}/note", web::post().to(note))
        .route("/claims/{id}/eta", web::post().to(eta))
        .route("/claims/{id}/rma", web::post().to(rma))
        .route("/claims/{id}/assign", web::post().to(assign))
        .route("/claims/{id}/recall-remedy", web::post().to(recall_remedy))
        .route("/claims/{id}/photos/{photo}", web::get().to(photo));
}

fn no_claim() -> AppError {
    AppError::not_found("No such claim", "There is no claim with this number.")
}

/// A possible move, as the page offers it.
struct Offer {
    to: &'static str,
    action: &'static str,
    needs_note: bool,
    needs_serial: bool,
}

#[derive(Template)]
#[template(path = "staff/claim.html")]
struct Page {
    c: Claim,
    status: &'static str,
    category: &'static str,
    csrf_token: String,
    notice: Option<&'static str>,
    error: Option<String>,
    offers: Vec<Offer>,
    is_open: bool,
    /// (label, live now?) of every flag that is set.
    flags: Vec<String>,
    warranty: String,
    unit_status: String,
    history: Vec<(String, String, String)>,
    timeline: Vec<TimelineEntry>,
    photos: Vec<Photo>,
    staff: Vec<(i64, String, bool)>,
    me: i64,
    today: String,
    /// (code, title) of the open recalls of the claim's unit: the claim can be their remedy.
    recalls: Vec<(String, String)>,
}

#[derive(Deserialize)]
pub struct PageQuery {
    notice: Option<String>,
    error: Option<String>,
    why: Option<String>,
    to: Option<String>,
}

async fn page(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let c = Claim::find(&mut conn, path.into_inner())
        .await?
        .ok_or_else(no_claim)?;
    let events = db::timeline(&mut conn, c.id, true).await?;
    let photos = db::photos(&mut conn, c.id).await?;
    let unit = UnitHistory::load(&mut conn, c.unit_id)
        .await?
        .ok_or_else(no_claim)?;
    let owner_now = owner_of(&mut conn, c.unit_id).await?;
    let staff = db::staff_members(&mut conn).await?;
    let recalls: Vec<(String, String)> = crate::db::recalls::of_unit(&conn, c.unit_id)
        .await?
        .into_iter()
        .filter(|r| r.remedied_on.is_none())
        .map(|r| (r.code, r.title))
        .collect();
    drop(conn);
    let today = chrono::Utc::now().date_naive();
    let now = c.state().unwrap_or(Status::Closed);
    let offers = now
        .next(Actor::Staff)
        .into_iter()
        .map(|to| Offer {
            to: to.as_str(),
            action: to.action(),
            needs_note: needs(to) == Needs::PublicNote,
            needs_serial: needs(to) == Needs::ReplacementSerial,
        })
        .collect();
    // The flags as filed, and as they stand now.
    let mut flags = Vec::new();
    let never_sold_now =
        unit.sold_on.is_none() && !matches!(unit.status.as_str(), "sold" | "registered");
    if c.flag_never_sold || never_sold_now {
        flags.push("Unit never recorded as sold".to_owned());
    }
    // After a replacement the owner owns the new unit: that is no reason for a flag.
    if c.flag_not_owner || (owner_now != Some(c.account_id) && c.replacement_serial.is_none()) {
        flags.push("Claimant is not the registered owner".to_owned());
    }
    let in_warranty = matches!(unit.warranty(c.noticed_on), WarrantyStatus::Active { .. });
    if c.flag_out_of_warranty || !in_warranty {
        flags.push("Out of warranty when the problem was noticed".to_owned());
    }
    if c.flag_open_recall || !recalls.is_empty() {
        flags.push("Open recall on the unit: route it to the recall remedy".to_owned());
    }
    let notice = match q.notice.as_deref() {
        Some("moved") => Some("Done. The customer sees the new status and was told by mail."),
        Some("update") => Some("Update sent to the customer."),
        Some("note") => Some("Internal note saved (the customer does not see it)."),
        Some("eta") => Some("Estimate saved; the customer was told by mail."),
        Some("rma") => Some("Return number saved; the customer was told by mail."),
        Some("assigned") => Some("Assignment saved."),
        Some("recall") => Some("Recorded as the recall remedy: the unit counts as remedied."),
        _ => None,
    };
    let error = q.error.as_deref().map(|e| match e {
        "note" => "Write the note the customer will read (at most 2,000 characters).".to_owned(),
        "text" => "Write the text (at most 4,000 characters).".to_owned(),
        "serial" => "Enter the serial number of the replacement unit.".to_owned(),
        "unknown-serial" => "No unit of ours has that serial number (add the GTIN if several models use it).".to_owned(),
        "replacement" => match q.why.as_deref() {
            Some("same") => "The replacement must be another unit than the one claimed for.".to_owned(),
            Some("not_owner") => "The customer no longer owns the claimed unit through this claim's registration: check the registrations before replacing.".to_owned(),
            Some("already_replaced") => "The claimed unit was replaced already.".to_owned(),
            _ => "That unit cannot be the replacement: it must be in stock, never sold, not linked to a sale and not registered or requested by anyone.".to_owned(),
        },
        "date" => "Enter the estimated completion date: today or later.".to_owned(),
        "rma" => "Enter the return number (at most 40 characters) and how to send the product (at most 2,000).".to_owned(),
        "assignee" => "Choose someone from the list.".to_owned(),
        "recall" => "The unit is not open in that recall (remedied already, or the campaign is closed).".to_owned(),
        "changed" => "Someone changed this claim meanwhile; here it is as it stands now. Check and try again.".to_owned(),
        "final" => "This claim is closed: nothing more can change.".to_owned(),
        _ => match q.to.as_deref().and_then(Status::parse) {
            Some(to) => match crate::domain::claims::check(now, to, Actor::Staff) {
                Err(e) => super::capitalise(&e.0) + ".",
                Ok(()) => "That move is possible now; try again.".to_owned(),
            },
            None => "That move is not possible from the claim's current status.".to_owned(),
        },
    });
    let history = unit
        .events
        .iter()
        .map(|e| {
            (
                e.at.format("%Y-%m-%d").to_string(),
                e.kind.clone(),
                e.note.clone().unwrap_or_default(),
            )
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &Page {
            status: now.label(),
            category: category_label(&c.category).unwrap_or("Other"),
            csrf_token: user.session.csrf_token.clone(),
            notice,
            error,
            offers,
            is_open: now.is_open(),
            flags,
            warranty: unit.warranty_text(today),
            unit_status: unit.status.clone(),
            history,
            timeline: events.iter().map(|e| describe(e, true)).collect(),
            photos,
            staff: staff
                .into_iter()
                .map(|(id, email)| (id, email, c.assignee_id == Some(id)))
                .collect(),
            me: user.account.id,
            today: today.to_string(),
            recalls,
            c,
        },
    ))
}

/// The account that owns the unit now (its active registration), if any.
async fn owner_of(
    conn: &mut diesel_async::AsyncPgConnection,
    unit_id: i64,
) -> Result<Option<i64>, AppError> {
    use crate::db::schema::registrations as r;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    Ok(r::table
        .filter(r::unit_id.eq(unit_id).and(r::status.eq("active")))
        .select(r::account_id)
        .first(conn)
        .await
        .optional()?)
}

fn back(id: i64, q: &str) -> HttpResponse {
    see_other(&format!("/staff/claims/{id}?{q}"))
}

/// The mail for a public change, in words the customer reads.
fn update_mail(
    state: &AppState,
    n: &db::Notify<'_>,
    what: &str,
    note: Option<&str>,
    eta: Option<NaiveDate>,
) -> anyhow::Result<Option<crate::mail::Mail>> {
    messages::claim_update(
        &state.config.base_url(),
        n.email,
        n.number,
        n.claim_id,
        what,
        note,
        eta.map(long_date).as_deref(),
    )
    .map(Some)
}

fn clean(text: &str, max: usize) -> Option<&str> {
    let t = text.trim();
    let ok = !t.is_empty()
        && t.chars().count() <= max
        && !t
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t');
    ok.then_some(t)
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    seen: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    gtin: String,
}

async fn move_on(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<MoveForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let f = f.form;
    let (Some(to), Some(seen)) = (Status::parse(&f.to), Status::parse(&f.seen)) else {
        return Ok(back(id, "error=move"));
    };
    let note = clean(&f.note, 2000);
    if needs(to) == Needs::PublicNote && note.is_none() {
        return Ok(back(id, "error=note"));
    }
    if !f.note.trim().is_empty() && note.is_none() {
        return Ok(back(id, "error=note"));
    }
    let today = chrono::Utc::now().date_naive();
    let replacement = if needs(to) == Needs::ReplacementSerial {
        let gtin = Some(f.gtin.as_str()).filter(|g| !g.trim().is_empty());
        let Ok(query) = LookupQuery::parse(&f.serial, gtin) else {
            return Ok(back(id, "error=serial"));
        };
        let mut conn = state.pool.get().await?;
        let g = query.gtin.map(|g| g.as_string());
        let found = UnitMatch::find(&conn, &state.catalogue(), &query.serial, g.as_deref()).await?;
        let [new] = found.as_slice() else {
            return Ok(back(id, "error=unknown-serial"));
        };
        // The old unit's warranty end on the day of the replacement is what the new inherits.
        let claim = Claim::find(&mut conn, id).await?.ok_or_else(no_claim)?;
        let old = UnitHistory::load(&mut conn, claim.unit_id)
            .await?
            .ok_or_else(no_claim)?;
        Some(Replacement {
            unit_id: new.unit.id,
            inherited_end: old.warranty(today).ends_on(),
            today,
        })
    } else {
        None
    };
    let what = match to {
        Status::Replaced => "We are replacing your product: the new one keeps the rest of your warranty.".to_owned(),
        Status::InfoRequested => "We need a little more information to go on with your claim: please answer on the claim's page.".to_owned(),
        other => format!("Your claim is now: {}.", other.label().to_lowercase()),
    };
    let mut conn = state.pool.get().await?;
    let done = db::move_to(
        &mut conn,
        &Move {
            claim_id: id,
            seen,
            to,
            actor: Actor::Staff,
            actor_id: user.account.id,
            own_account: None,
            note,
            replacement,
        },
        |n| update_mail(&state, n, &what, note, None),
    )
    .await?;
    Ok(match done {
        Ok(()) => back(id, "notice=moved"),
        Err(Refused::NotFound) => return Err(no_claim()),
        Err(Refused::Changed(_)) => back(id, "error=changed"),
        Err(Refused::Replacement(why)) => back(id, &format!("error=replacement&why={why}")),
        Err(_) => back(id, &format!("error=move&to={}", to.as_str())),
    })
}

#[derive(Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    text: String,
    /// "public" (an update the customer reads and gets by mail) or anything else (internal).
    #[serde(default)]
    visibility: String,
}

async fn note(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<NoteForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let Some(text) = clean(&f.form.text, 4000) else {
        return Ok(back(id, "error=text"));
    };
    let public = f.form.visibility == "public";
    let ok = if public {
        "notice=update"
    } else {
        "notice=note"
    };
    let mail = Tell {
        what: "There is news about your claim.",
        note: Some(text),
        eta: None,
    };
    record(
        &state,
        &user,
        id,
        &Change::Note { public, text },
        Some(mail),
        ok,
    )
    .await
}

/// What the customer is told by mail about a change.
struct Tell<'a> {
    what: &'a str,
    note: Option<&'a str>,
    eta: Option<NaiveDate>,
}

/// Records a staff change of claim `id` (mailing the customer `tell` when it is public) and
/// answers with the claim page: `ok` as its notice, or why nothing changed.
async fn record(
    state: &AppState,
    user: &SignedIn,
    id: i64,
    change: &Change<'_>,
    tell: Option<Tell<'_>>,
    ok: &str,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let done = db::change(
        &mut conn,
        id,
        Actor::Staff,
        user.account.id,
        None,
        change,
        |n| match &tell {
            Some(t) => update_mail(state, n, t.what, t.note, t.eta),
            None => Ok(None),
        },
    )
    .await?;
    settled(id, done, ok)
}

fn settled(id: i64, done: Result<(), Refused>, ok: &str) -> Result<HttpResponse, AppError> {
    match done {
        Ok(()) => Ok(back(id, ok)),
        Err(Refused::NotFound) => Err(no_claim()),
        Err(Refused::Transition(_)) => Ok(back(id, "error=final")),
        Err(_) => Ok(back(id, "error=changed")),
    }
}

#[derive(Deserialize)]
pub struct EtaForm {
    #[serde(default)]
    eta: String,
    #[serde(default)]
    note: String,
}

async fn eta(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<EtaForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let today = chrono::Utc::now().date_naive();
    let Some(date) = NaiveDate::parse_from_str(f.form.eta.trim(), "%Y-%m-%d")
        .ok()
        .filter(|d| *d >= today && *d <= today + chrono::Days::new(3 * 366))
    else {
        return Ok(back(id, "error=date"));
    };
    let note = clean(&f.form.note, 2000);
    if !f.form.note.trim().is_empty() && note.is_none() {
        return Ok(back(id, "error=note"));
    }
    let tell = Tell {
        what: "We have a new estimate for your claim.",
        note,
        eta: Some(date),
    };
    let change = Change::Eta { eta: date, note };
    record(&state, &user, id, &change, Some(tell), "notice=eta").await
}

#[derive(Deserialize)]
pub struct RmaForm {
    #[serde(default)]
    rma: String,
    #[serde(default)]
    instructions: String,
}

async fn rma(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<RmaForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let (Some(number), Some(instructions)) =
        (clean(&f.form.rma, 40), clean(&f.form.instructions, 2000))
    else {
        return Ok(back(id, "error=rma"));
    };
    let what = format!("Please send your product to us with return number (RMA) {number}.");
    let tell = Tell {
        what: &what,
        note: Some(instructions),
        eta: None,
    };
    let change = Change::Rma {
        number,
        instructions,
    };
    record(&state, &user, id, &change, Some(tell), "notice=rma").await
}

#[derive(Deserialize)]
pub struct AssignForm {
    /// An account id, or empty for nobody.
    #[serde(default)]
    assignee: String,
}

async fn assign(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<AssignForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let mut conn = state.pool.get().await?;
    let assignee = match f.form.assignee.trim() {
        "" => None,
        other => {
            let Ok(wanted) = other.parse::<i64>() else {
                return Ok(back(id, "error=assignee"));
            };
            let staff = db::staff_members(&mut conn).await?;
            if !staff.iter().any(|(s, _)| *s == wanted) {
                return Ok(back(id, "error=assignee"));
            }
            Some(wanted)
        }
    };
    drop(conn);
    let change = Change::Assign { assignee };
    record(&state, &user, id, &change, None, "notice=assigned").await
}

async fn photo(
    _user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (claim_id, photo_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let p = db::photos(&mut conn, claim_id)
        .await?
        .into_iter()
        .find(|p| p.id == photo_id)
        .ok_or_else(no_claim)?;
    drop(conn);
    photo_response(&state, &p).await
}

#[derive(Deserialize)]
pub struct RecallRemedyForm {
    #[serde(default)]
    code: String,
}

/// `POST /staff/claims/{id}/recall-remedy`: the repair or replacement under this claim is the
/// remedy of a recall of the unit.
async fn recall_remedy(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<RecallRemedyForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let today = chrono::Utc::now().date_naive();
    let mut conn = state.pool.get().await?;
    if Claim::find(&mut conn, id).await?.is_none() {
        return Err(no_claim());
    }
    let done =
        db::record_recall_remedy(&mut conn, id, f.form.code.trim(), user.account.id, today).await?;
    Ok(back(
        id,
        if done {
            "notice=recall"
        } else {
            "error=recall"
        },
    ))
}
