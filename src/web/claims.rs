//! Warranty claims, the customer's side: file one on a registered product
//! (`/account/products/{id}/claim`), follow it (`/account/claims/{id}`: status, the current
//! estimate, every public update), answer staff's questions, add photos, cancel before triage.
//! Another customer's claim or photo is "not found".

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use super::account::Field;
use super::multipart::{CsrfMultipart, FilePart};
use super::session::{CsrfForm, SignedIn};
use super::views::long_date;
use super::{AppError, AppState, render, see_other};
use crate::db::claims::{
    self as db, Change, Claim, ClaimEvent, Flags, Move, NewClaim, Photo, Refused, StoredPhoto,
};
use crate::db::lookup::UnitHistory;
use crate::db::registrations::MyProduct;
use crate::domain::claims::{Actor, CATEGORIES, Status, category_label};
use crate::domain::proof::{self, MAX_PROOF_BYTES, check_photo};
use crate::files::{self, Store};
use crate::mail::messages;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/products/{id}/claim", web::get().to(claim_form))
        .route("/account/products/{id}/claim", web::post().to(file_claim))
        .route("/account/claims", web::get().to(my_claims))
        .route("/account/claims/{id}", web::get().to(my_claim))
        .route("/account/claims/{id}/info", web::post().to(add_info))
        .route("/account/claims/{id}/cancel", web::post().to(cancel))
        .route(
            "/account/claims/{id}/photos/{photo}",
            web::get().to(own_photo),
        );
}

/// Longest description or answer, in characters.
const MAX_TEXT: usize = 4000;

fn no_product() -> AppError {
    AppError::not_found(
        "Not found",
        "You have no registered product with this number.",
    )
}

fn no_claim() -> AppError {
    AppError::not_found("Not found", "You have no claim with this number.")
}

/// The customer's registration a claim is filed on: theirs, and current.
async fn claimable(state: &AppState, id: i64, account_id: i64) -> Result<MyProduct, AppError> {
    let mut conn = state.pool.get().await?;
    MyProduct::find(&mut conn, id, account_id)
        .await?
        .filter(|p| matches!(p.status.as_str(), "active" | "pending_transfer"))
        .ok_or_else(no_product)
}

#[derive(Deserialize, Default)]
pub struct ClaimForm {
    #[serde(default)]
    category: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    noticed_on: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    phone: String,
}

#[derive(Template)]
#[template(path = "account/claim_form.html")]
struct FormPage {
    p: MyProduct,
    csrf_token: String,
    categories: Vec<(&'static str, &'static str, bool)>,
    category_error: Option<String>,
    description: String,
    description_error: Option<String>,
    noticed: Field,
    by_phone: bool,
    phone: Field,
    photos_error: Option<String>,
    photos_again: bool,
    has_errors: bool,
}

type Errors = Vec<(&'static str, String)>;

fn form_page(
    user_csrf: &str,
    p: MyProduct,
    status: StatusCode,
    f: &ClaimForm,
    errors: &Errors,
    photos_sent: bool,
) -> HttpResponse {
    let err = |name: &str| {
        errors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| super::capitalise(e))
    };
    let photos_error = err("photos");
    render(
        status,
        &FormPage {
            p,
            csrf_token: user_csrf.to_owned(),
            categories: CATEGORIES
                .iter()
                .map(|(code, label)| (*code, *label, f.category == *code))
                .collect(),
            category_error: err("category"),
            description: f.description.clone(),
            description_error: err("description"),
            noticed: Field::new("noticed_on", "When did you first notice it?", "date", "off")
                .value(&f.noticed_on)
                .error(err("noticed_on")),
            by_phone: f.contact == "phone",
            phone: Field::new("phone", "Phone number", "tel", "tel")
                .value(&f.phone)
                .optional()
                .hint("Only if you would rather we call you.")
                .error(err("phone")),
            photos_again: photos_sent && photos_error.is_none() && !errors.is_empty(),
            photos_error,
            has_errors: !errors.is_empty(),
        },
    )
}

async fn claim_form(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let p = claimable(&state, path.into_inner(), user.account.id).await?;
    // A claim on it that is still being dealt with: what is new goes there.
    {
        let mut conn = state.pool.get().await?;
        let open = Claim::of_account(&mut conn, user.account.id, Some(p.unit_id))
            .await?
            .into_iter()
            .find(|c| c.state().is_some_and(Status::awaits_outcome));
        if let Some(c) = open {
            return Ok(see_other(&format!("/account/claims/{}?error=open", c.id)));
        }
    }
    let f = ClaimForm {
        contact: "email".into(),
        ..Default::default()
    };
    Ok(form_page(
        &user.session.csrf_token,
        p,
        StatusCode::OK,
        &f,
        &Vec::new(),
        false,
    ))
}

/// The photos sent with a form, checked by content: (type, bytes) each, or why not.
fn check_photos<T>(
    form: &CsrfMultipart<T>,
    room: usize,
) -> Result<Vec<(proof::ProofType, &[u8])>, String> {
    let sent: Vec<&FilePart> = form.files.iter().filter(|f| f.field == "photos").collect();
    if sent.len() > room || form.too_many_files {
        return Err(format!(
            "a claim takes at most {} photos: choose fewer",
            db::MAX_PHOTOS
        ));
    }
    sent.into_iter()
        .map(|f| {
            if f.too_large {
                return Err(format!(
                    "a photo is larger than {} MB, the most accepted: send a smaller one",
                    MAX_PROOF_BYTES / 1_048_576
                ));
            }
            check_photo(&f.bytes).map(|t| (t, &f.bytes[..]))
        })
        .collect()
}

async fn store_photos(
    state: &AppState,
    photos: &[(proof::ProofType, &[u8])],
) -> Result<Vec<StoredPhoto>, AppError> {
    let mut stored = Vec::new();
    for (kind, bytes) in photos {
        match files::save(
            &state.config.data_dir,
            Store::ClaimPhotos,
            bytes,
            kind.extension(),
        )
        .await
        {
            Ok(file) => stored.push(StoredPhoto {
                file,
                media_type: kind.media_type().to_owned(),
                bytes: i32::try_from(bytes.len()).unwrap_or(i32::MAX),
            }),
            Err(e) => {
                forget(state, &stored).await;
                return Err(e.into());
            }
        }
    }
    Ok(stored)
}

async fn forget(state: &AppState, photos: &[StoredPhoto]) {
    let names: Vec<String> = photos.iter().map(|p| p.file.clone()).collect();
    files::remove(&state.config.data_dir, Store::ClaimPhotos, &names).await;
}

fn check_text(text: &str, field: &'static str, what: &str, errors: &mut Errors) {
    let t = text.trim();
    if t.is_empty() {
        errors.push((field, format!("{what}: a few words are enough")));
    } else if t.chars().count() > MAX_TEXT {
        errors.push((field, format!("at most {MAX_TEXT} characters")));
    } else if t
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        errors.push((field, "remove the control characters".into()));
    }
}

async fn file_claim(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    user: SignedIn,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    // Someone else's product is "not found" before a byte of the form is read.
    let p = claimable(&state, id, user.account.id).await?;
    let sent =
        CsrfMultipart::<ClaimForm>::read(&req, body, MAX_PROOF_BYTES, db::MAX_PHOTOS).await?;
    let f = &sent.form;
    let today = chrono::Utc::now().date_naive();
    let mut errors = Errors::new();
    if category_label(&f.category).is_none() {
        errors.push(("category", "choose what is wrong".into()));
    }
    check_text(
        &f.description,
        "description",
        "describe the problem",
        &mut errors,
    );
    let noticed = match NaiveDate::parse_from_str(f.noticed_on.trim(), "%Y-%m-%d") {
        Ok(d) if d > today => {
            errors.push(("noticed_on", "the date cannot be in the future".into()));
            None
        }
        Ok(d) if d < p.purchased_on => {
            errors.push((
                "noticed_on",
                format!(
                    "the date is before you bought it ({}): check it",
                    long_date(p.purchased_on)
                ),
            ));
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(("noticed_on", "enter the date (day, month and year)".into()));
            None
        }
    };
    let phone = f.phone.trim();
    let contact = if f.contact == "phone" {
        "phone"
    } else {
        "email"
    };
    if contact == "phone" {
        let digits = phone.chars().filter(char::is_ascii_digit).count();
        let allowed = phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +-()./".contains(c));
        if !(5..=20).contains(&digits) || !allowed || phone.len() > 40 {
            errors.push((
                "phone",
                "enter a phone number (digits, spaces, + - ( ) only)".into(),
            ));
        }
    }
    let photos = check_photos(&sent, db::MAX_PHOTOS).unwrap_or_else(|e| {
        errors.push(("photos", e));
        Vec::new()
    });
    let (Some(noticed_on), true) = (noticed, errors.is_empty()) else {
        return Ok(form_page(
            &sent.session.csrf_token,
            p,
            StatusCode::UNPROCESSABLE_ENTITY,
            f,
            &errors,
            !sent.files.is_empty(),
        ));
    };
    let mut conn = state.pool.get().await?;
    let history = UnitHistory::load(&mut conn, p.unit_id)
        .await?
        .ok_or_else(no_product)?;
    let flags = Flags {
        never_sold: history.sold_on.is_none()
            && !matches!(history.status.as_str(), "sold" | "registered"),
        not_owner: p.status != "active",
        out_of_warranty: !matches!(
            history.warranty(noticed_on),
            crate::domain::warranty::WarrantyStatus::Active { .. }
        ),
        open_recall: crate::db::recalls::of_unit(&conn, history.unit_id)
            .await?
            .iter()
            .any(|r| r.remedied_on.is_none()),
    };
    let stored = store_photos(&state, &photos).await?;
    let base = state.config.base_url();
    let product = format!("{} {}", p.brand, p.name);
    let email = user.account.email.clone();
    let filed = db::file(
        &mut conn,
        &NewClaim {
            unit_id: history.unit_id,
            registration_id: p.id,
            account_id: user.account.id,
            category: &f.category,
            description: f.description.trim(),
            noticed_on,
            contact_preference: contact,
            contact_phone: (contact == "phone").then_some(phone),
            flags,
            photos: &stored,
        },
        chrono::Datelike::year(&today),
        |number, claim_id| messages::claim_received(&base, &email, number, claim_id, &product),
    )
    .await;
    match filed {
        Ok(db::Filed::New { id: claim_id, .. }) => Ok(see_other(&format!(
            "/account/claims/{claim_id}?notice=filed"
        ))),
        Ok(db::Filed::AlreadyOpen { id: claim_id, .. }) => {
            forget(&state, &stored).await;
            Ok(see_other(&format!("/account/claims/{claim_id}?error=open")))
        }
        Err(e) => {
            forget(&state, &stored).await;
            Err(e.into())
        }
    }
}

pub(super) struct ClaimRow {
    pub id: i64,
    pub number: String,
    pub product: String,
    pub serial: String,
    pub status: &'static str,
    pub eta: Option<String>,
    pub filed: String,
}

pub(super) fn row(c: &Claim) -> ClaimRow {
    ClaimRow {
        id: c.id,
        number: c.number.clone(),
        product: c.product.clone(),
        serial: c.serial.clone(),
        status: c.state().map_or("", Status::label),
        eta: c
            .eta
            .filter(|_| c.state().is_some_and(Status::awaits_outcome))
            .map(long_date),
        filed: long_date(c.filed_at.date_naive()),
    }
}

#[derive(Template)]
#[template(path = "account/claims.html")]
struct ListPage {
    rows: Vec<ClaimRow>,
}

async fn my_claims(user: SignedIn, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let claims = Claim::of_account(&mut conn, user.account.id, None).await?;
    Ok(render(
        StatusCode::OK,
        &ListPage {
            rows: claims.iter().map(row).collect(),
        },
    ))
}

/// One entry of the customer's timeline, in words.
pub(super) struct TimelineEntry {
    pub at: String,
    pub title: String,
    pub note: Option<String>,
    pub internal: bool,
    pub by: String,
}

pub(super) fn describe(e: &ClaimEvent, for_staff: bool) -> TimelineEntry {
    let label = |s: &Option<String>| {
        s.as_deref()
            .and_then(Status::parse)
            .map_or("", Status::label)
    };
    let title = match e.kind.as_str() {
        "filed" => "Claim received".to_owned(),
        "status" => label(&e.to_status).to_owned(),
        "update" => "Update from our service team".to_owned(),
        "note" => "Internal note".to_owned(),
        "eta" => match e.eta {
            Some(d) => format!("Estimated completion: {}", long_date(d)),
            None => "Estimate updated".to_owned(),
        },
        "rma" => "Return instructions".to_owned(),
        "assigned" => "Assignment".to_owned(),
        "info_added" => "Information you added".to_owned(),
        other => other.to_owned(),
    };
    let by = match (e.actor_role.as_str(), for_staff) {
        ("customer", _) => "customer".to_owned(),
        (_, true) => e.actor_email.clone().unwrap_or_else(|| "staff".into()),
        _ => "our service team".to_owned(),
    };
    TimelineEntry {
        at: e.at.format("%-d %B %Y, %H:%M UTC").to_string(),
        title: if e.kind == "info_added" && for_staff {
            "Information from the customer".into()
        } else {
            title
        },
        note: e.note.clone(),
        internal: !e.public,
        by,
    }
}

#[derive(Template)]
#[template(path = "account/claim.html")]
struct ClaimPage {
    noticed: String,
    c: Claim,
    status: &'static str,
    category: &'static str,
    csrf_token: String,
    notice: Option<&'static str>,
    error: Option<String>,
    eta: Option<String>,
    timeline: Vec<TimelineEntry>,
    photos: Vec<Photo>,
    photo_room: usize,
    can_cancel: bool,
    asked: bool,
    is_open: bool,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
    error: Option<String>,
}

async fn my_claim(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let c = Claim::find_own(&mut conn, path.into_inner(), user.account.id)
        .await?
        .ok_or_else(no_claim)?;
    let events = db::timeline(&mut conn, c.id, false).await?;
    let photos = db::photos(&mut conn, c.id).await?;
    let state_now = c.state().unwrap_or(Status::Closed);
    let notice = match q.notice.as_deref() {
        Some("filed") => Some("Your claim is filed. We sent you a confirmation by mail."),
        Some("info") => Some("Thank you: our service team has your information."),
        Some("cancelled") => Some("Your claim is cancelled."),
        _ => None,
    };
    let error = match q.error.as_deref() {
        Some("text") => Some("Write your answer (at most 4,000 characters).".to_owned()),
        Some("photos") => Some(format!(
            "Photos must be JPEG or PNG, at most {} MB each, {} in all.",
            MAX_PROOF_BYTES / 1_048_576,
            db::MAX_PHOTOS
        )),
        Some("changed") => {
            Some("The claim changed meanwhile; here it is as it stands now.".to_owned())
        }
        Some("cancel") => {
            Some("A claim can be cancelled only until our staff have assessed it.".to_owned())
        }
        _ => None,
    };
    Ok(render(
        StatusCode::OK,
        &ClaimPage {
            noticed: long_date(c.noticed_on),
            status: state_now.label(),
            category: category_label(&c.category).unwrap_or("Other"),
            csrf_token: user.session.csrf_token.clone(),
            notice,
            error,
            eta: c.eta.filter(|_| state_now.awaits_outcome()).map(long_date),
            timeline: events.iter().map(|e| describe(e, false)).collect(),
            photo_room: db::MAX_PHOTOS.saturating_sub(photos.len()),
            photos,
            can_cancel: crate::domain::claims::check(state_now, Status::Cancelled, Actor::Customer)
                .is_ok(),
            asked: state_now == Status::InfoRequested,
            is_open: state_now.awaits_outcome(),
            c,
        },
    ))
}

#[derive(Deserialize)]
pub struct InfoForm {
    #[serde(default)]
    text: String,
}

async fn add_info(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    {
        let mut conn = state.pool.get().await?;
        Claim::find_own(&mut conn, id, user.account.id)
            .await?
            .ok_or_else(no_claim)?;
    }
    let sent = CsrfMultipart::<InfoForm>::read(&req, body, MAX_PROOF_BYTES, db::MAX_PHOTOS).await?;
    let back = |q: &str| see_other(&format!("/account/claims/{id}?{q}"));
    let mut errors = Errors::new();
    check_text(&sent.form.text, "text", "write your answer", &mut errors);
    if !errors.is_empty() {
        return Ok(back("error=text"));
    }
    let Ok(photos) = check_photos(&sent, db::MAX_PHOTOS) else {
        return Ok(back("error=photos"));
    };
    let mut conn = state.pool.get().await?;
    let stored = store_photos(&state, &photos).await?;
    let done = db::change(
        &mut conn,
        id,
        Actor::Customer,
        user.account.id,
        Some(user.account.id),
        &Change::Info {
            text: sent.form.text.trim(),
            photos: &stored,
        },
        |_| Ok(None),
    )
    .await;
    match done {
        Ok(Ok(())) => Ok(back("notice=info")),
        Ok(Err(refused)) => {
            forget(&state, &stored).await;
            match refused {
                Refused::NotFound => Err(no_claim()),
                Refused::TooManyPhotos => Ok(back("error=photos")),
                _ => Ok(back("error=changed")),
            }
        }
        Err(e) => {
            forget(&state, &stored).await;
            Err(e.into())
        }
    }
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    seen: String,
}

async fn cancel(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<CancelForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let Some(account) = f.session.account.clone() else {
        return Err(AppError::SignInRequired(format!("/account/claims/{id}")));
    };
    let seen = Status::parse(&f.form.seen).unwrap_or(Status::Submitted);
    let mut conn = state.pool.get().await?;
    let done = db::move_to(
        &mut conn,
        &Move {
            claim_id: id,
            seen,
            to: Status::Cancelled,
            actor: Actor::Customer,
            actor_id: account.id,
            own_account: Some(account.id),
            note: None,
            replacement: None,
        },
        |_| Ok(None),
    )
    .await?;
    let back = |q: &str| see_other(&format!("/account/claims/{id}?{q}"));
    match done {
        Ok(()) => Ok(back("notice=cancelled")),
        Err(Refused::NotFound) => Err(no_claim()),
        Err(Refused::Changed(_)) => Ok(back("error=changed")),
        Err(_) => Ok(back("error=cancel")),
    }
}

/// A claim photo as a response (pictures only, shown inline, never cached by shared caches).
pub(super) async fn photo_response(state: &AppState, p: &Photo) -> Result<HttpResponse, AppError> {
    let bytes = files::read(&state.config.data_dir, Store::ClaimPhotos, &p.file)
        .await?
        .ok_or_else(|| AppError::not_found("No photo", "This photo is no longer stored."))?;
    let kind = proof::ProofType::from_media_type(&p.media_type)
        .filter(|k| *k != proof::ProofType::Pdf)
        .ok_or_else(|| AppError::not_found("No photo", "This photo is no longer stored."))?;
    Ok(super::private_file(bytes, kind, "claim-photo"))
}

async fn own_photo(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, AppError> {
    let (claim_id, photo_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let c = Claim::find_own(&mut conn, claim_id, user.account.id)
        .await?
        .ok_or_else(no_claim)?;
    let photo = db::photos(&mut conn, c.id)
        .await?
        .into_iter()
        .find(|p| p.id == photo_id)
        .ok_or_else(no_claim)?;
    drop(conn);
    photo_response(&state, &photo).await
}
