//! Product registration (customers): `/register` (from a lookup result or a product's QR code,
//! GTIN and serial prefilled), and "My products" (`/account/products`).
//!
//! Anyone may fill in the form. Someone not signed in gets a draft, named by a secret in the
//! address `/register/finish?draft=…`; that address travels through sign-in, sign-up and the
//! confirmation mail as the return path, so nothing typed is lost, and the draft becomes a
//! registration when its author, signed in, confirms it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use super::account::Field;
use super::multipart::{CsrfMultipart, FilePart};
use super::session::{CsrfForm, Session, SignedIn};
use super::{AppError, AppState, encode_query, render, see_other};
use crate::db::lookup::UnitMatch;
use crate::db::registrations::{
    Completion, Draft, MyProduct, NewRegistration, Registered, StoredProof,
};
use crate::domain::lookup::{LookupField, LookupQuery};
use crate::domain::proof::{self, MAX_PROOF_BYTES, ProofType};
use crate::files::{self, Store};
use crate::mail::{Mail, messages};
use crate::tokens::{hash_token, new_token};

/// How long a draft waits for its author to sign in (the confirmation link lasts 48 hours).
const DRAFT_HOURS: i64 = 7 * 24;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/register", web::get().to(register_page))
        .route("/register", web::post().to(register))
        .route("/register/finish", web::get().to(finish_page))
        .route("/register/finish", web::post().to(finish))
        .route("/account/products", web::get().to(products))
        .route("/account/products/{id}", web::get().to(product))
        .route("/account/products/{id}/proof", web::get().to(own_proof))
        .route("/account/products/{id}/proof", web::post().to(add_proof))
        .route("/account/products/{id}/end", web::post().to(end));
}

#[derive(Deserialize, Default, Clone)]
pub struct RegisterForm {
    #[serde(default)]
    serial: String,
    #[serde(default)]
    gtin: String,
    #[serde(default)]
    purchased_on: String,
    #[serde(default)]
    place_of_purchase: String,
    marketing: Option<String>,
    reminder: Option<String>,
}

#[derive(Template)]
#[template(path = "account/register.html")]
struct RegisterPage {
    csrf_token: String,
    signed_in: bool,
    fields: Vec<Field>,
    proof_error: Option<String>,
    proof_again: bool,
    max_proof_mb: usize,
    marketing: bool,
    reminder: bool,
    has_errors: bool,
}

type Errors = Vec<(&'static str, String)>;

fn page(
    session: &Session,
    status: StatusCode,
    form: &RegisterForm,
    errors: &Errors,
    proof_sent: bool,
) -> HttpResponse {
    let err = |name: &str| {
        errors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| super::capitalise(e))
    };
    let fields = vec![
        Field::new("serial", "Serial number", "text", "off")
            .value(&form.serial)
            .hint("As printed on the product, or the text of its QR code.")
            .error(err("serial")),
        Field::new("gtin", "GTIN (the number under the barcode)", "text", "off")
            .value(&form.gtin)
            .optional()
            .hint("Only needed if we ask for it.")
            .error(err("gtin")),
        Field::new("purchased_on", "Purchase date", "date", "off")
            .value(&form.purchased_on)
            .error(err("purchased_on")),
        Field::new("place_of_purchase", "Where you bought it", "text", "off")
            .value(&form.place_of_purchase)
            .hint("The shop or website.")
            .error(err("place_of_purchase")),
    ];
    let proof_error = err("proof");
    render(
        status,
        &RegisterPage {
            csrf_token: session.csrf_token.clone(),
            signed_in: session.account.is_some(),
            fields,
            // A browser never refills a file input: say so when one was sent and is now gone.
            proof_again: proof_sent && proof_error.is_none() && !errors.is_empty(),
            proof_error,
            max_proof_mb: MAX_PROOF_BYTES / 1_048_576,
            marketing: form.marketing.is_some(),
            reminder: form.reminder.is_some(),
            has_errors: !errors.is_empty(),
        },
    )
}

async fn register_page(session: Session, q: web::Query<RegisterForm>) -> HttpResponse {
    let mut form = q.into_inner();
    // Boxes are never ticked in advance, whatever the address says.
    form.marketing = None;
    form.reminder = None;
    page(&session, StatusCode::OK, &form, &Vec::new(), false)
}

fn check_details(form: &RegisterForm, today: NaiveDate, errors: &mut Errors) -> Option<NaiveDate> {
    let place = form.place_of_purchase.trim();
    if place.is_empty() {
        errors.push(("place_of_purchase", "say where you bought it".into()));
    } else if place.chars().count() > 200 || place.chars().any(char::is_control) {
        errors.push((
            "place_of_purchase",
            "at most 200 characters, no control characters".into(),
        ));
    }
    match NaiveDate::parse_from_str(form.purchased_on.trim(), "%Y-%m-%d") {
        Ok(d) if d > today + chrono::Days::new(1) => {
            errors.push((
                "purchased_on",
                "the purchase date cannot be in the future".into(),
            ));
            None
        }
        Ok(d) if d.year() < 1990 => {
            errors.push(("purchased_on", "check the purchase date".into()));
            None
        }
        Ok(d) => Some(d),
        Err(_) => {
            errors.push((
                "purchased_on",
                "enter the purchase date (day, month and year)".into(),
            ));
            None
        }
    }
}

/// The one unit the form names, or the error that says why not.
async fn find_unit(
    state: &AppState,
    form: &RegisterForm,
    errors: &mut Errors,
) -> Result<Option<UnitMatch>, AppError> {
    let gtin = Some(form.gtin.as_str()).filter(|g| !g.trim().is_empty());
    let query = match LookupQuery::parse(&form.serial, gtin) {
        Ok(q) => q,
        Err(e) => {
            let field = if e.field == LookupField::Gtin {
                "gtin"
            } else {
                "serial"
            };
            errors.push((field, e.message));
            return Ok(None);
        }
    };
    let g = query.gtin.map(|g| g.as_string());
    let conn = state.pool.get().await?;
    let found = UnitMatch::find(&conn, &state.catalogue(), &query.serial, g.as_deref()).await?;
    match found.len() {
        0 => {
            errors.push((
                "serial",
                "we have no product with this serial number: check it against the label (letters and digits that look alike, such as O and 0)".into(),
            ));
            Ok(None)
        }
        1 => Ok(found.into_iter().next()),
        n => {
            errors.push((
                "gtin",
                format!("this serial number exists on {n} of our products: enter the GTIN, the number under the barcode, too"),
            ));
            Ok(None)
        }
    }
}

/// The proof sent with a form, judged by its content: `Ok(None)` when none was chosen.
fn check_proof(files: &[FilePart]) -> Result<Option<(ProofType, &[u8])>, String> {
    let Some(f) = files.iter().find(|f| f.field == "proof") else {
        return Ok(None);
    };
    if f.too_large {
        return Err(proof::too_large());
    }
    proof::check(&f.bytes).map(|t| Some((t, &f.bytes[..])))
}

/// Stores a checked proof under the data directory.
async fn store_proof(
    state: &AppState,
    proof: Option<(ProofType, &[u8])>,
) -> Result<Option<StoredProof>, AppError> {
    let Some((kind, bytes)) = proof else {
        return Ok(None);
    };
    let file = files::save(
        &state.config.data_dir,
        Store::Proofs,
        bytes,
        kind.extension(),
    )
    .await?;
    Ok(Some(StoredProof {
        file,
        media_type: kind.media_type().to_owned(),
        bytes: i32::try_from(bytes.len()).unwrap_or(i32::MAX),
    }))
}

/// The mail that tells the customer what registering did.
fn outcome_mail(
    base: &str,
    email: &str,
    product: &str,
    serial: &str,
    outcome: Registered,
) -> anyhow::Result<Option<Mail>> {
    match outcome {
        Registered::Owner { .. } => {
            messages::registration_confirmed(base, email, product, serial).map(Some)
        }
        Registered::PendingTransfer => {
            messages::transfer_requested(base, email, product, serial).map(Some)
        }
        _ => Ok(None),
    }
}

fn products_notice(code: &str) -> HttpResponse {
    see_other(&format!("/account/products?notice={code}"))
}

/// The cookie that names the browser a draft was typed in: a secret of its own, so a draft's
/// address alone (in a mail, a history) does not let anyone else finish it.
/// Over https it carries the `__Secure-` prefix, so a plain-http page cannot set it (`__Host-`
/// would also need `Path=/`, and this cookie is only sent to `/register`).
const BROWSER_COOKIE: &str = "portal_draft";
const SECURE_BROWSER_COOKIE: &str = "__Secure-portal_draft";

fn browser_cookie_name(state: &AppState) -> &'static str {
    if state.sessions.secure {
        SECURE_BROWSER_COOKIE
    } else {
        BROWSER_COOKIE
    }
}

fn browser_secret(req: &HttpRequest) -> Option<String> {
    let state = req.app_data::<web::Data<AppState>>()?;
    req.cookie(browser_cookie_name(state))
        .map(|c| c.value().to_owned())
        .filter(|v| is_token(v))
}

fn browser_cookie(state: &AppState, secret: &str) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(browser_cookie_name(state), secret.to_owned())
        .path("/register")
        .http_only(true)
        .same_site(actix_web::cookie::SameSite::Lax)
        .secure(state.sessions.secure)
        .max_age(actix_web::cookie::time::Duration::hours(DRAFT_HOURS))
        .finish()
}

async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    // Each attempt looks a serial up: the lookup's limit per address applies.
    state.limiter.check(&req)?;
    let sent = CsrfMultipart::<RegisterForm>::read(&req, body, MAX_PROOF_BYTES, 1).await?;
    let (session, form) = (&sent.session, &sent.form);
    let today = chrono::Utc::now().date_naive();
    let mut errors = Errors::new();
    let purchased_on = check_details(form, today, &mut errors);
    let unit = find_unit(&state, form, &mut errors).await?;
    let proof = check_proof(&sent.files).unwrap_or_else(|e| {
        errors.push(("proof", e));
        None
    });
    let (Some(unit), Some(purchased_on), true) = (unit, purchased_on, errors.is_empty()) else {
        return Ok(page(
            session,
            StatusCode::UNPROCESSABLE_ENTITY,
            form,
            &errors,
            !sent.files.is_empty(),
        ));
    };
    // The connection first: a file is written only when its row can be.
    let mut conn = state.pool.get().await?;
    let stored = store_proof(&state, proof).await?;
    let stored_file: Vec<String> = stored.iter().map(|p| p.file.clone()).collect();
    let email = session.account.as_ref().map(|a| a.email.clone());
    let r = NewRegistration {
        unit_id: unit.unit.id,
        account_id: session.account_id().unwrap_or(0),
        email: email.as_deref().unwrap_or(""),
        purchased_on,
        place_of_purchase: form.place_of_purchase.trim(),
        marketing_consent: form.marketing.is_some(),
        reminder_wanted: form.reminder.is_some(),
        proof: stored,
    };
    let Some(account) = &session.account else {
        // Not signed in: keep what was typed and send them to sign in or sign up.
        let token = new_token();
        let secret = browser_secret(&req).unwrap_or_else(new_token);
        let created = Draft::create(
            &mut conn,
            &hash_token(&token),
            &hash_token(&secret),
            &r,
            DRAFT_HOURS,
        )
        .await;
        if let Err(e) = created {
            files::remove(&state.config.data_dir, Store::Proofs, &stored_file).await;
            return Err(e.into());
        }
        let mut res = see_other(&format!("/register/finish?draft={token}"));
        res.add_cookie(&browser_cookie(&state, &secret))
            .map_err(|e| AppError::Internal(e.into()))?;
        return Ok(res);
    };
    let product = format!("{} {}", unit.model.brand, unit.model.name);
    let base = state.config.base_url();
    let serial = unit.unit.serial.clone();
    let result = crate::db::registrations::register(&mut conn, &r, |o| {
        outcome_mail(&base, &account.email, &product, &serial, o)
    })
    .await;
    match result {
        Ok(done) => {
            let replaced: Vec<String> = done.replaced_proof.into_iter().collect();
            files::remove(&state.config.data_dir, Store::Proofs, &replaced).await;
            Ok(products_notice(done.registered.code()))
        }
        Err(e) => {
            files::remove(&state.config.data_dir, Store::Proofs, &stored_file).await;
            Err(e.into())
        }
    }
}

// ---- finishing a draft after signing in --------------------------------------------------

#[derive(Deserialize)]
pub struct DraftQuery {
    #[serde(default)]
    draft: String,
}

#[derive(Template)]
#[template(path = "account/finish.html")]
struct FinishPage {
    csrf_token: String,
    signed_in: bool,
    /// The details, to the browser that typed them or the account they are meant for only.
    draft: Option<Draft>,
    token: String,
    proof: Option<String>,
    change: String,
    login: String,
    signup: String,
}

fn draft_gone() -> AppError {
    AppError::Gone(
        "This registration is no longer waiting".into(),
        "It was completed already, or it waited more than 7 days for you to sign in. See your products, or register again: it takes a minute.".into(),
    )
}

/// Someone else's registration: "not found", like every other id of another user, so that an
/// address never tells whether it belongs to somebody.
fn not_yours() -> AppError {
    AppError::not_found(
        "No registration waiting here",
        "This address does not lead to a registration of yours: a registration typed in another browser can only be finished there or by the account it was meant for. Register the product here instead: it takes a minute.",
    )
}

/// Whether `s` has the shape of a token we hand out (so it needs no escaping in an address).
fn is_token(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The draft token in a return path `/register/finish?draft=…`, if that is what it is.
pub(super) fn draft_in(next: &str) -> Option<&str> {
    next.strip_prefix("/register/finish?draft=")
        .filter(|t| is_token(t))
}

/// Marks the draft in `next` (if any) as meant for `account_id`: the account signed up, or
/// already existing, for the address its confirmation mail goes to.
pub(super) async fn draft_meant_for(
    conn: &mut diesel_async::AsyncPgConnection,
    next: Option<&str>,
    account_id: i64,
) -> Result<(), AppError> {
    if let Some(token) = next.and_then(draft_in) {
        Draft::meant_for(conn, &hash_token(token), account_id).await?;
    }
    Ok(())
}

async fn finish_page(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<DraftQuery>,
) -> Result<HttpResponse, AppError> {
    if !is_token(&q.draft) {
        return Err(draft_gone());
    }
    let mut conn = state.pool.get().await?;
    let draft = Draft::find(&mut conn, &hash_token(&q.draft))
        .await?
        .ok_or_else(draft_gone)?;
    drop(conn);
    match (draft.completed_by, session.account_id()) {
        (Some(by), Some(me)) if by == me => {
            return Ok(products_notice(draft.outcome.as_deref().unwrap_or("")));
        }
        (Some(_), _) => return Err(draft_gone()),
        (None, _) => {}
    }
    let browser = browser_secret(&req).map(|s| hash_token(&s));
    let allowed = draft.may_finish(browser.as_deref(), session.account_id());
    if session.account.is_some() && !allowed {
        return Err(not_yours());
    }
    let back = encode_query(&format!("/register/finish?draft={}", q.draft));
    let proof = draft.proof().map(|p| proof_label(&p.media_type, p.bytes));
    let change = format!(
        "/register?serial={}&gtin={}&purchased_on={}&place_of_purchase={}",
        encode_query(&draft.serial),
        draft.gtin,
        draft.purchased_on,
        encode_query(&draft.place_of_purchase)
    );
    Ok(render(
        StatusCode::OK,
        &FinishPage {
            csrf_token: session.csrf_token.clone(),
            signed_in: session.account.is_some(),
            token: q.draft.clone(),
            proof,
            change,
            draft: allowed.then_some(draft),
            login: format!("/login?next={back}"),
            signup: format!("/signup?next={back}"),
        },
    ))
}

#[derive(Deserialize)]
pub struct FinishForm {
    #[serde(default)]
    draft: String,
}

async fn finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<FinishForm>,
) -> Result<HttpResponse, AppError> {
    if !is_token(&f.form.draft) {
        return Err(draft_gone());
    }
    let Some(account) = f.session.account.clone() else {
        return Err(AppError::SignInRequired(format!(
            "/register/finish?draft={}",
            f.form.draft
        )));
    };
    let browser = browser_secret(&req).map(|s| hash_token(&s));
    let base = state.config.base_url();
    let mut conn = state.pool.get().await?;
    let done = Draft::complete(
        &mut conn,
        &hash_token(&f.form.draft),
        browser.as_deref(),
        account.id,
        &account.email,
        |d, o| outcome_mail(&base, &account.email, &d.product, &d.serial, o),
    )
    .await?;
    drop(conn);
    match done {
        Completion::Gone => Err(draft_gone()),
        Completion::NotYours => Err(not_yours()),
        Completion::AlreadyDone(code) => Ok(products_notice(&code)),
        Completion::Done(_, outcome) => {
            let replaced: Vec<String> = outcome.replaced_proof.into_iter().collect();
            files::remove(&state.config.data_dir, Store::Proofs, &replaced).await;
            Ok(products_notice(outcome.registered.code()))
        }
    }
}

// ---- proofs of purchase ------------------------------------------------------------------

/// "PDF, 120 KB".
fn proof_label(media_type: &str, bytes: i32) -> String {
    let kind = ProofType::from_media_type(media_type).map_or("file", ProofType::label);
    format!("{kind}, {}", proof::human_size(i64::from(bytes)))
}

/// A stored proof as a response: pictures shown, PDFs downloaded (a PDF viewer is a plugin our
/// content policy does not let run), never cached by shared caches.
pub(super) async fn proof_response(
    state: &AppState,
    file: Option<&str>,
    media_type: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let not_found = || {
        AppError::not_found(
            "No proof of purchase",
            "No proof of purchase was added to this registration.",
        )
    };
    let (Some(file), Some(kind)) = (file, media_type.and_then(ProofType::from_media_type)) else {
        return Err(not_found());
    };
    let bytes = files::read(&state.config.data_dir, Store::Proofs, file)
        .await?
        .ok_or_else(not_found)?;
    Ok(super::private_file(bytes, kind, "proof-of-purchase"))
}

fn no_product() -> AppError {
    AppError::not_found(
        "Not found",
        "You have no registered product with this number.",
    )
}

async fn own_proof(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let p = MyProduct::find(&mut conn, path.into_inner(), user.account.id)
        .await?
        .ok_or_else(no_product)?;
    drop(conn);
    proof_response(&state, p.proof_file.as_deref(), p.proof_type.as_deref()).await
}

#[derive(Deserialize)]
pub struct Empty {}

async fn add_proof(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    // Someone else's registration is "not found" before a byte of the file is read.
    {
        let mut conn = state.pool.get().await?;
        MyProduct::find(&mut conn, id, user.account.id)
            .await?
            .filter(|p| matches!(p.status.as_str(), "active" | "pending_transfer"))
            .ok_or_else(no_product)?;
    }
    let sent = CsrfMultipart::<Empty>::read(&req, body, MAX_PROOF_BYTES, 1).await?;
    let account = sent.session.account.clone().unwrap_or(user.account);
    let back = |q: &str| see_other(&format!("/account/products/{id}?{q}#proof-title"));
    let checked = match check_proof(&sent.files) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(back("proof_error=none")),
        Err(_) if sent.files.iter().any(|f| f.too_large) => return Ok(back("proof_error=size")),
        Err(_) => return Ok(back("proof_error=type")),
    };
    let mut conn = state.pool.get().await?;
    let stored = store_proof(&state, Some(checked)).await?;
    let Some(stored) = stored else {
        return Ok(back("proof_error=none"));
    };
    let replaced = crate::db::registrations::set_proof(&mut conn, id, account.id, &stored).await;
    drop(conn);
    match replaced {
        Ok(Some(old)) => {
            let old: Vec<String> = old.into_iter().collect();
            files::remove(&state.config.data_dir, Store::Proofs, &old).await;
            Ok(back("notice=proof-saved"))
        }
        Ok(None) => {
            files::remove(&state.config.data_dir, Store::Proofs, &[stored.file]).await;
            Err(no_product())
        }
        Err(e) => {
            files::remove(&state.config.data_dir, Store::Proofs, &[stored.file]).await;
            Err(e.into())
        }
    }
}

struct ProductRow {
    id: i64,
    title: String,
    serial: String,
    status: String,
    warranty: String,
}

#[derive(Template)]
#[template(path = "account/products.html")]
struct ProductsPage {
    notice: Option<(&'static str, &'static str)>,
    rows: Vec<ProductRow>,
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// The warranty line of each registered unit (by unit id), from the same engine as the
/// lookup, in one query for all of them.
async fn warranty_lines(
    state: &AppState,
    products: &[&MyProduct],
) -> Result<std::collections::HashMap<i64, String>, AppError> {
    let ids: Vec<i64> = products.iter().map(|p| p.unit_id).collect();
    let mut conn = state.pool.get().await?;
    let today = chrono::Utc::now().date_naive();
    Ok(UnitMatch::by_ids(&mut conn, &ids)
        .await?
        .into_iter()
        .map(|m| {
            let line = super::views::WarrantyView::short(&m.warranty(today));
            (m.unit.id, line)
        })
        .collect())
}

async fn products(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let mine = MyProduct::of_account(&mut conn, user.account.id).await?;
    drop(conn);
    let active: Vec<&MyProduct> = mine.iter().filter(|p| p.status == "active").collect();
    let mut lines = warranty_lines(&state, &active).await?;
    let rows = mine
        .iter()
        .map(|p| ProductRow {
            id: p.id,
            title: format!("{} {}", p.brand, p.name),
            serial: p.serial.clone(),
            status: p.status.clone(),
            warranty: if p.status == "active" {
                lines.remove(&p.unit_id).unwrap_or_else(|| "unknown".into())
            } else {
                String::new()
            },
        })
        .collect();
    let notice = match q.notice.as_deref() {
        Some("registered") => Some(("ok", "Registered. We sent you a confirmation by mail.")),
        Some("pending") => Some((
            "warn",
            "This product is registered to someone else. Our staff will check your request and tell you by mail; we never share either owner's details.",
        )),
        Some("already") => Some(("ok", "This product is already registered to you.")),
        Some("requested") => Some((
            "warn",
            "You already asked to register this product; our staff have not decided yet.",
        )),
        Some("ended") => Some((
            "ok",
            "Your registration has ended. We will no longer write to you about that product.",
        )),
        Some("withdrawn") => Some(("ok", "Your request is withdrawn.")),
        _ => None,
    };
    Ok(render(StatusCode::OK, &ProductsPage { notice, rows }))
}

#[derive(Template)]
#[template(path = "account/product.html")]
struct ProductPage {
    claims: Vec<super::claims::ClaimRow>,
    recalls: Vec<crate::db::recalls::UnitRecall>,
    p: MyProduct,
    warranty: String,
    csrf_token: String,
    notice: Option<&'static str>,
    proof: Option<String>,
    proof_error: Option<String>,
}

#[derive(Deserialize)]
pub struct ProductQuery {
    notice: Option<String>,
    proof_error: Option<String>,
}

async fn product(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<ProductQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let p = MyProduct::find(&mut conn, path.into_inner(), user.account.id)
        .await?
        .ok_or_else(no_product)?;
    let claims =
        crate::db::claims::Claim::of_account(&mut conn, user.account.id, Some(p.unit_id)).await?;
    let recalls = crate::db::recalls::of_unit(&conn, p.unit_id).await?;
    drop(conn);
    let warranty = if p.status == "active" {
        warranty_lines(&state, &[&p])
            .await?
            .remove(&p.unit_id)
            .unwrap_or_else(|| "unknown".into())
    } else {
        String::new()
    };
    let proof = match (&p.proof_type, p.proof_bytes) {
        (Some(t), Some(b)) => Some(proof_label(t, b)),
        _ => None,
    };
    // Messages after a redirect are fixed texts chosen by a code, never text from the address.
    let proof_error = match q.proof_error.as_deref() {
        Some("none") => Some("Choose a file first.".to_owned()),
        Some("size") => Some(super::capitalise(&proof::too_large())),
        Some(_) => Some(super::capitalise(
            &proof::check(b"").err().unwrap_or_default(),
        )),
        None => None,
    };
    let notice =
        (q.notice.as_deref() == Some("proof-saved")).then_some("Your proof of purchase is saved.");
    Ok(render(
        StatusCode::OK,
        &ProductPage {
            claims: claims.iter().map(super::claims::row).collect(),
            recalls,
            p,
            warranty,
            csrf_token: user.session.csrf_token.clone(),
            notice,
            proof,
            proof_error,
        },
    ))
}

/// `POST /account/products/{id}/end`: "I no longer have this product", or withdrawing a request
/// that waits for staff.
async fn end(
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let Some(account) = f.session.account.clone() else {
        return Err(AppError::SignInRequired(format!("/account/products/{id}")));
    };
    let mut conn = state.pool.get().await?;
    match crate::db::registrations::end(&mut conn, id, account.id).await? {
        Some(crate::db::registrations::Ended::Ownership) => {
            Ok(see_other("/account/products?notice=ended"))
        }
        Some(crate::db::registrations::Ended::Request) => {
            Ok(see_other("/account/products?notice=withdrawn"))
        }
        None => Err(no_product()),
    }
}
