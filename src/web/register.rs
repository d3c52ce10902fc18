//! Product registration (customers): `/register` (from a lookup result or a product's QR code,
//! GTIN and serial prefilled), and "My products" (`/account/products`).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use super::account::Field;
use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, render, see_other};
use crate::db::lookup::UnitMatch;
use crate::db::registrations::{MyProduct, NewRegistration, Registered};
use crate::domain::lookup::{LookupField, LookupQuery};
use crate::mail::messages;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/register", web::get().to(register_page))
        .route("/register", web::post().to(register))
        .route("/account/products", web::get().to(products))
        .route("/account/products/{id}", web::get().to(product));
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
    fields: Vec<Field>,
    marketing: bool,
    reminder: bool,
    has_errors: bool,
}

type Errors = Vec<(&'static str, String)>;

fn page(user: &SignedIn, status: StatusCode, form: &RegisterForm, errors: &Errors) -> HttpResponse {
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
    render(
        status,
        &RegisterPage {
            csrf_token: user.session.csrf_token.clone(),
            fields,
            marketing: form.marketing.is_some(),
            reminder: form.reminder.is_some(),
            has_errors: !errors.is_empty(),
        },
    )
}

async fn register_page(user: SignedIn, q: web::Query<RegisterForm>) -> HttpResponse {
    let mut form = q.into_inner();
    // Boxes are never ticked in advance, whatever the address says.
    form.marketing = None;
    form.reminder = None;
    page(&user, StatusCode::OK, &form, &Vec::new())
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

async fn register(
    user: SignedIn,
    state: web::Data<AppState>,
    form: CsrfForm<RegisterForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.form;
    let today = chrono::Utc::now().date_naive();
    let mut errors = Errors::new();
    let purchased_on = check_details(&form, today, &mut errors);
    let gtin = Some(form.gtin.as_str()).filter(|g| !g.trim().is_empty());
    let query = match LookupQuery::parse(&form.serial, gtin) {
        Ok(q) => Some(q),
        Err(e) => {
            let field = if e.field == LookupField::Gtin {
                "gtin"
            } else {
                "serial"
            };
            errors.push((field, e.message));
            None
        }
    };
    let unit = match &query {
        None => None,
        Some(q) => {
            let g = q.gtin.map(|g| g.as_string());
            let mut conn = state.pool.get().await?;
            let found = UnitMatch::find(&mut conn, &q.serial, g.as_deref()).await?;
            match found.len() {
                0 => {
                    errors.push((
                        "serial",
                        "we have no product with this serial number: check it against the label (letters and digits that look alike, such as O and 0)".into(),
                    ));
                    None
                }
                1 => found.into_iter().next(),
                n => {
                    errors.push((
                        "gtin",
                        format!("this serial number exists on {n} of our products: enter the GTIN, the number under the barcode, too"),
                    ));
                    None
                }
            }
        }
    };
    let (Some(unit), Some(purchased_on), true) = (unit, purchased_on, errors.is_empty()) else {
        return Ok(page(
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            &errors,
        ));
    };
    let product = format!("{} {}", unit.model.brand, unit.model.name);
    let base = state.config.base_url();
    let email = user.account.email.clone();
    let serial = unit.unit.serial.clone();
    let mut conn = state.pool.get().await?;
    let outcome = crate::db::registrations::register(
        &mut conn,
        &NewRegistration {
            unit_id: unit.unit.id,
            account_id: user.account.id,
            email: &email,
            purchased_on,
            place_of_purchase: form.place_of_purchase.trim(),
            marketing_consent: form.marketing.is_some(),
            reminder_wanted: form.reminder.is_some(),
        },
        |o| match o {
            Registered::Owner { .. } => {
                messages::registration_confirmed(&base, &email, &product, &serial).map(Some)
            }
            Registered::PendingTransfer => {
                messages::transfer_requested(&base, &email, &product, &serial).map(Some)
            }
            _ => Ok(None),
        },
    )
    .await?;
    let notice = match outcome {
        Registered::Owner { .. } => "registered",
        Registered::PendingTransfer => "pending",
        Registered::AlreadyYours => "already",
        Registered::AlreadyRequested => "requested",
    };
    Ok(see_other(&format!("/account/products?notice={notice}")))
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

/// The warranty line of a registered unit, from the same engine as the lookup.
async fn warranty_line(state: &AppState, p: &MyProduct) -> Result<String, AppError> {
    let mut conn = state.pool.get().await?;
    let serial = crate::domain::SerialNumber::parse(&p.serial)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))?;
    let found = UnitMatch::find(&mut conn, &serial, Some(&p.gtin)).await?;
    let today = chrono::Utc::now().date_naive();
    Ok(match found.first().map(|m| m.warranty(today)) {
        Some(w) => super::views::WarrantyView::short(&w),
        None => "unknown".into(),
    })
}

async fn products(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let mine = MyProduct::of_account(&mut conn, user.account.id).await?;
    drop(conn);
    let mut rows = Vec::new();
    for p in &mine {
        rows.push(ProductRow {
            id: p.id,
            title: format!("{} {}", p.brand, p.name),
            serial: p.serial.clone(),
            status: p.status.clone(),
            warranty: if p.status == "active" {
                warranty_line(&state, p).await?
            } else {
                String::new()
            },
        });
    }
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
        _ => None,
    };
    Ok(render(StatusCode::OK, &ProductsPage { notice, rows }))
}

#[derive(Template)]
#[template(path = "account/product.html")]
struct ProductPage {
    p: MyProduct,
    warranty: String,
}

async fn product(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let p = MyProduct::find(&mut conn, path.into_inner(), user.account.id)
        .await?
        .ok_or_else(|| {
            AppError::not_found(
                "Not found",
                "You have no registered product with this number.",
            )
        })?;
    drop(conn);
    let warranty = if p.status == "active" {
        warranty_line(&state, &p).await?
    } else {
        String::new()
    };
    Ok(render(StatusCode::OK, &ProductPage { p, warranty }))
}
