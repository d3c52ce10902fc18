//! Admin catalogue pages: product models (with their warranty terms and serial rules), lots and
//! locations. Mounted under `/admin`, so the admin guard applies.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::NaiveDate;
use diesel_async::AsyncConnection;
use serde::Deserialize;

use super::account::Field;
use super::admin::admin_of;
use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, capitalise, render, see_other};
use crate::db::accounts::{AuditEntry, AuditEvent};
use crate::db::catalogue::{
    CatalogueConflict, LOCATION_KINDS, Location, Lot, ModelFields, ProductModel,
};
use crate::domain::Gtin;
use crate::domain::serial::check_cs82;
use crate::domain::serial_format::SerialFormat;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/catalogue", web::get().to(catalogue))
        .route("/models/new", web::get().to(new_model_page))
        .route("/models", web::post().to(create_model))
        .route("/models/{id}", web::get().to(edit_model_page))
        .route("/models/{id}", web::post().to(update_model))
        .route("/models/{id}/lots", web::post().to(create_lot))
        .route("/locations", web::post().to(create_location))
        .route("/stock", web::get().to(stock))
        .route("/reports/stock", web::get().to(on_hand))
        .route("/reports/stock.csv", web::get().to(on_hand_csv))
        .route("/reports/turnover", web::get().to(turnover))
        .route("/reports/turnover.csv", web::get().to(turnover_csv))
        .route("/models/{id}/generate", web::get().to(generate_page))
        .route("/models/{id}/generate", web::post().to(generate));
}

type Errors = BTreeMap<&'static str, String>;

fn notice_text(code: Option<&str>) -> Option<String> {
    Some(
        match code? {
            "model-created" => "Product model created.",
            "model-saved" => "Changes saved.",
            "lot-created" => "Lot added.",
            "location-created" => "Location added.",
            "units-generated" => "Units created.",
            "picture-saved" => "Picture saved.",
            "picture-removed" => "Picture removed.",
            "extended" => "Warranty extended for the lot.",
            _ => return None,
        }
        .to_owned(),
    )
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
    picture_error: Option<String>,
}

// ---- catalogue overview -------------------------------------------------------------------

struct ModelRow {
    id: i64,
    gtin: String,
    name: String,
    brand: String,
    model_number: String,
    warranty: String,
    format: String,
}

#[derive(Template)]
#[template(path = "admin/catalogue.html")]
struct CataloguePage {
    notice: Option<String>,
    csrf_token: String,
    models: Vec<ModelRow>,
    locations: Vec<Location>,
    location_code: Field,
    location_name: Field,
    location_kind: String,
    kinds: [&'static str; 4],
}

async fn catalogue_page(
    user: &SignedIn,
    state: &AppState,
    status: StatusCode,
    notice: Option<String>,
    code: Field,
    name: Field,
    kind: String,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let models = ProductModel::all(&mut conn)
        .await?
        .into_iter()
        .map(|m| ModelRow {
            id: m.id,
            warranty: format!(
                "{} months from {}",
                m.warranty_months, m.warranty_start_rule
            ),
            format: m.serial_format.clone().unwrap_or_default(),
            gtin: m.gtin,
            name: m.name,
            brand: m.brand,
            model_number: m.model_number,
        })
        .collect();
    let locations = Location::all(&mut conn).await?;
    Ok(render(
        status,
        &CataloguePage {
            notice,
            csrf_token: user.session.csrf_token.clone(),
            models,
            locations,
            location_code: code,
            location_name: name,
            location_kind: kind,
            kinds: LOCATION_KINDS,
        },
    ))
}

fn location_fields() -> (Field, Field) {
    (
        Field::new("code", "Code", "text", "off").hint("Short and unique, e.g. WH-EU."),
        Field::new("name", "Name", "text", "off"),
    )
}

async fn catalogue(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let (code, name) = location_fields();
    catalogue_page(
        &user,
        &state,
        StatusCode::OK,
        notice_text(q.notice.as_deref()),
        code,
        name,
        "warehouse".into(),
    )
    .await
}

pub(super) async fn audit(
    req: &HttpRequest,
    state: &AppState,
    actor: i64,
    event: &str,
    detail: &str,
) -> Result<(), AppError> {
    let ip = state.limiter.client_ip(req).map(|i| i.to_string());
    let mut conn = state.pool.get().await?;
    AuditEntry::record(
        &mut conn,
        AuditEvent {
            event,
            actor_id: Some(actor),
            ip: ip.as_deref(),
            detail: Some(detail),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

#[derive(Deserialize)]
pub struct LocationForm {
    code: String,
    name: String,
    kind: String,
}

async fn create_location(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<LocationForm>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let (mut code_f, mut name_f) = location_fields();
    code_f = code_f.value(f.form.code.trim());
    name_f = name_f.value(f.form.name.trim());
    let code = f.form.code.trim().to_uppercase();
    let name = f.form.name.trim();
    let kind = if LOCATION_KINDS.contains(&f.form.kind.as_str()) {
        f.form.kind.clone()
    } else {
        "warehouse".into()
    };
    let code_ok = !code.is_empty()
        && code.len() <= 32
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !code_ok {
        let code_f = code_f.error(Some("Use 1 to 32 letters, digits, - or _.".into()));
        return catalogue_page(
            &admin,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            code_f,
            name_f,
            kind,
        )
        .await;
    }
    if name.is_empty() || name.chars().count() > 200 {
        let name_f = name_f.error(Some(
            "Give the location a name (at most 200 characters).".into(),
        ));
        return catalogue_page(
            &admin,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            code_f,
            name_f,
            kind,
        )
        .await;
    }
    let created = {
        let mut conn = state.pool.get().await?;
        Location::create(&mut conn, &code, name, &kind).await?
    };
    if created.is_none() {
        let code_f = code_f.error(Some(format!("There is already a location {code}.")));
        return catalogue_page(
            &admin,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            code_f,
            name_f,
            kind,
        )
        .await;
    }
    audit(&req, &state, admin.account.id, "location_created", &code).await?;
    Ok(see_other("/admin/catalogue?notice=location-created"))
}

// ---- product models -----------------------------------------------------------------------

#[derive(Deserialize, Default, Clone)]
pub struct ModelForm {
    #[serde(default)]
    gtin: String,
    sku: String,
    name: String,
    brand: String,
    model_number: String,
    #[serde(default)]
    description: String,
    warranty_months: String,
    warranty_start_rule: String,
    warranty_grace_days: String,
    serials_case_sensitive: Option<String>,
    #[serde(default)]
    serial_format: String,
    #[serde(default)]
    serial_hint: String,
}

fn text(value: &str, field: &'static str, max: usize, errors: &mut Errors, what: &str) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.insert(field, format!("Enter the {what}."));
    } else if v.chars().count() > max {
        errors.insert(field, format!("The {what} has at most {max} characters."));
    }
    v.to_owned()
}

fn number(
    value: &str,
    field: &'static str,
    range: std::ops::RangeInclusive<i32>,
    errors: &mut Errors,
    what: &str,
) -> i32 {
    match value.trim().parse::<i32>() {
        Ok(n) if range.contains(&n) => n,
        _ => {
            errors.insert(
                field,
                format!(
                    "The {what} is a whole number from {} to {}.",
                    range.start(),
                    range.end()
                ),
            );
            0
        }
    }
}

/// Checks a submitted model form; every problem is reported against its field.
fn validate(form: &ModelForm, creating: bool) -> Result<(Option<Gtin>, ModelFields), Errors> {
    let mut errors = Errors::new();
    let gtin = if creating {
        match Gtin::parse_typed(&form.gtin) {
            Ok(g) => Some(g),
            Err(e) => {
                errors.insert("gtin", capitalise(&e.to_string()));
                None
            }
        }
    } else {
        None
    };
    let fields = ModelFields {
        sku: text(&form.sku, "sku", 64, &mut errors, "SKU"),
        name: text(&form.name, "name", 200, &mut errors, "product name"),
        brand: text(&form.brand, "brand", 100, &mut errors, "brand"),
        model_number: text(
            &form.model_number,
            "model_number",
            100,
            &mut errors,
            "model number",
        ),
        description: form.description.trim().chars().take(2000).collect(),
        warranty_months: number(
            &form.warranty_months,
            "warranty_months",
            0..=600,
            &mut errors,
            "warranty term",
        ),
        warranty_start_rule: match form.warranty_start_rule.as_str() {
            r @ ("sale" | "manufacture") => r.to_owned(),
            _ => {
                errors.insert(
                    "warranty_start_rule",
                    "Choose when the warranty starts.".into(),
                );
                "sale".into()
            }
        },
        warranty_grace_days: number(
            &form.warranty_grace_days,
            "warranty_grace_days",
            0..=3650,
            &mut errors,
            "grace period",
        ),
        serials_case_sensitive: form.serials_case_sensitive.is_some(),
        serial_format: match form.serial_format.trim() {
            "" => None,
            p => match SerialFormat::parse(p) {
                Ok(_) => Some(p.to_owned()),
                Err(e) => {
                    errors.insert("serial_format", capitalise(&e.to_string()));
                    None
                }
            },
        },
        serial_hint: form.serial_hint.trim().chars().take(300).collect(),
    };
    if errors.is_empty() {
        Ok((gtin, fields))
    } else {
        Err(errors)
    }
}

struct LotRow {
    id: i64,
    code: String,
    produced: String,
    expiry: String,
}

#[derive(Template)]
#[template(path = "admin/model.html")]
struct ModelEditPage {
    title: String,
    notice: Option<String>,
    csrf_token: String,
    action: String,
    gtin: Option<String>,
    fields: Vec<Field>,
    start_rule: String,
    start_rule_error: Option<String>,
    case_sensitive: bool,
    form_error: Option<String>,
    model_id: Option<i64>,
    lots: Vec<LotRow>,
    lot_fields: Vec<Field>,
    /// The picture's address, when the model has one.
    picture: Option<String>,
    picture_error: Option<String>,
}

impl ModelEditPage {
    fn has_errors(&self) -> bool {
        self.form_error.is_some()
            || self.start_rule_error.is_some()
            || self
                .fields
                .iter()
                .chain(&self.lot_fields)
                .any(|f| f.error.is_some())
    }
}

fn model_fields(form: &ModelForm, errors: &Errors, creating: bool) -> Vec<Field> {
    let e = |k: &str| errors.get(k).cloned();
    let mut v = Vec::new();
    if creating {
        v.push(
            Field::new("gtin", "GTIN", "text", "off")
                .value(&form.gtin)
                .hint("8, 12, 13 or 14 digits; it cannot be changed later.")
                .error(e("gtin")),
        );
    }
    v.extend([
        Field::new("sku", "SKU", "text", "off").value(&form.sku).error(e("sku")),
        Field::new("brand", "Brand", "text", "off").value(&form.brand).error(e("brand")),
        Field::new("name", "Product name", "text", "off").value(&form.name).error(e("name")),
        Field::new("model_number", "Model number", "text", "off").value(&form.model_number).error(e("model_number")),
        Field::new("description", "Description (optional)", "text", "off").value(&form.description).optional(),
        Field::new("warranty_months", "Warranty term in months", "number", "off").value(&form.warranty_months).error(e("warranty_months")),
        Field::new("warranty_grace_days", "Grace period in days", "number", "off")
            .value(&form.warranty_grace_days)
            .hint("With a sale-based start and no sale known, the warranty starts this many days after manufacture.")
            .error(e("warranty_grace_days")),
        Field::new("serial_format", "Serial format (optional)", "text", "off")
            .value(&form.serial_format)
            .hint("Letters and symbols as printed, # for a digit, @ for a final check digit. Example: VC########@.")
            .error(e("serial_format"))
            .optional(),
        Field::new("serial_hint", "Where the serial is printed (optional)", "text", "off").value(&form.serial_hint).optional(),
    ]);
    v
}

fn lot_fields(code: &str, produced: &str, expiry: &str, errors: &Errors) -> Vec<Field> {
    let e = |k: &str| errors.get(k).cloned();
    vec![
        Field::new("code", "Lot code", "text", "off")
            .value(code)
            .error(e("code")),
        Field::new("production_date", "Production date", "date", "off")
            .value(produced)
            .error(e("production_date")),
        Field::new("expiry_date", "Expiry date (optional)", "date", "off")
            .value(expiry)
            .error(e("expiry_date"))
            .optional(),
    ]
}

fn form_of(m: &ProductModel) -> ModelForm {
    ModelForm {
        gtin: m.gtin.clone(),
        sku: m.sku.clone(),
        name: m.name.clone(),
        brand: m.brand.clone(),
        model_number: m.model_number.clone(),
        description: m.description.clone(),
        warranty_months: m.warranty_months.to_string(),
        warranty_start_rule: m.warranty_start_rule.clone(),
        warranty_grace_days: m.warranty_grace_days.to_string(),
        serials_case_sensitive: m.serials_case_sensitive.then(|| "on".to_owned()),
        serial_format: m.serial_format.clone().unwrap_or_default(),
        serial_hint: m.serial_hint.clone(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn model_page(
    user: &SignedIn,
    state: &AppState,
    status: StatusCode,
    model: Option<&ProductModel>,
    form: &ModelForm,
    errors: &Errors,
    form_error: Option<String>,
    lot_form: (&str, &str, &str, &Errors),
    notice: Option<String>,
    picture_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let (lots, picture) = match model {
        Some(m) => {
            let mut conn = state.pool.get().await?;
            (
                Lot::for_model(&mut conn, m.id).await?,
                crate::db::pictures::version(&mut conn, m.id)
                    .await?
                    .map(|v| format!("/models/{}/picture?v={}", m.id, v.timestamp())),
            )
        }
        None => (Vec::new(), None),
    };
    let page = ModelEditPage {
        title: model
            .map(|m| format!("{} {}", m.brand, m.name))
            .unwrap_or_else(|| "New product model".into()),
        notice,
        csrf_token: user.session.csrf_token.clone(),
        action: model
            .map(|m| format!("/admin/models/{}", m.id))
            .unwrap_or_else(|| "/admin/models".into()),
        gtin: model.map(|m| m.gtin.clone()),
        fields: model_fields(form, errors, model.is_none()),
        start_rule: form.warranty_start_rule.clone(),
        start_rule_error: errors.get("warranty_start_rule").cloned(),
        case_sensitive: form.serials_case_sensitive.is_some(),
        form_error,
        model_id: model.map(|m| m.id),
        lots: lots
            .into_iter()
            .map(|l| LotRow {
                id: l.id,
                code: l.code,
                produced: l.production_date.to_string(),
                expiry: l.expiry_date.map(|d| d.to_string()).unwrap_or_default(),
            })
            .collect(),
        lot_fields: lot_fields(lot_form.0, lot_form.1, lot_form.2, lot_form.3),
        picture,
        picture_error,
    };
    Ok(render(status, &page))
}

const NO_LOT: (&str, &str, &str, &Errors) = ("", "", "", &Errors::new());

async fn new_model_page(
    user: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = ModelForm {
        warranty_months: "24".into(),
        warranty_start_rule: "sale".into(),
        warranty_grace_days: "90".into(),
        ..Default::default()
    };
    model_page(
        &user,
        &state,
        StatusCode::OK,
        None,
        &form,
        &Errors::new(),
        None,
        NO_LOT,
        None,
        None,
    )
    .await
}

fn conflict_message(c: &CatalogueConflict) -> (&'static str, &'static str) {
    match c {
        CatalogueConflict::GtinTaken => ("gtin", "Another product model already has this GTIN."),
        CatalogueConflict::SkuTaken => ("sku", "Another product model already has this SKU."),
        CatalogueConflict::CaseCollision => (
            "serial_format",
            "Two serials of this model differ only in upper and lower case, so its serials cannot become case-insensitive.",
        ),
    }
}

async fn create_model(
    req: HttpRequest,
    state: web::Data<AppState>,
    f: CsrfForm<ModelForm>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let (gtin, fields) = match validate(&f.form, true) {
        Ok((Some(g), fields)) => (g, fields),
        Ok((None, _)) => return Err(AppError::BadRequest("GTIN missing.".into())),
        Err(errors) => {
            return model_page(
                &admin,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &f.form,
                &errors,
                None,
                NO_LOT,
                None,
                None,
            )
            .await;
        }
    };
    let created = {
        let mut conn = state.pool.get().await?;
        ProductModel::insert(&mut conn, &gtin, &fields).await?
    };
    match created {
        Ok(m) => {
            audit(
                &req,
                &state,
                admin.account.id,
                "model_created",
                &format!("{} {}", m.gtin, m.sku),
            )
            .await?;
            let _ = state.reload_catalogue().await;
            Ok(see_other(&format!(
                "/admin/models/{}?notice=model-created",
                m.id
            )))
        }
        Err(c) => {
            let (field, msg) = conflict_message(&c);
            let errors = Errors::from([(field, msg.to_owned())]);
            model_page(
                &admin,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &f.form,
                &errors,
                None,
                NO_LOT,
                None,
                None,
            )
            .await
        }
    }
}

async fn load_model(state: &AppState, id: i64) -> Result<ProductModel, AppError> {
    let mut conn = state.pool.get().await?;
    ProductModel::find(&mut conn, id).await?.ok_or_else(|| {
        AppError::not_found(
            "No such product model",
            "This product model does not exist.",
        )
    })
}

async fn edit_model_page(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let model = load_model(&state, path.into_inner()).await?;
    model_page(
        &user,
        &state,
        StatusCode::OK,
        Some(&model),
        &form_of(&model),
        &Errors::new(),
        None,
        NO_LOT,
        notice_text(q.notice.as_deref()),
        q.picture_error.clone(),
    )
    .await
}

async fn update_model(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<ModelForm>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let model = load_model(&state, path.into_inner()).await?;
    let fields = match validate(&f.form, false) {
        Ok((_, fields)) => fields,
        Err(errors) => {
            return model_page(
                &admin,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&model),
                &f.form,
                &errors,
                None,
                NO_LOT,
                None,
                None,
            )
            .await;
        }
    };
    let mut conn = state.pool.get().await?;
    let outcome = conn
        .transaction::<_, AppError, _>(async |conn| {
            let r = ProductModel::update(conn, model.id, &fields).await?;
            if r.is_err() {
                // Roll back a half-done change (the model row was updated before the re-key).
                return Err(AppError::Conflict(
                    conflict_message(r.as_ref().err().unwrap_or(&CatalogueConflict::SkuTaken))
                        .1
                        .to_owned(),
                ));
            }
            Ok(())
        })
        .await;
    drop(conn);
    match outcome {
        Ok(()) => {
            audit(
                &req,
                &state,
                admin.account.id,
                "model_updated",
                &format!("{} {}", model.gtin, fields.sku),
            )
            .await?;
            let _ = state.reload_catalogue().await;
            Ok(see_other(&format!(
                "/admin/models/{}?notice=model-saved",
                model.id
            )))
        }
        Err(AppError::Conflict(msg)) => {
            let field = if msg.contains("SKU") {
                "sku"
            } else {
                "serial_format"
            };
            let errors = Errors::from([(field, msg)]);
            model_page(
                &admin,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&model),
                &f.form,
                &errors,
                None,
                NO_LOT,
                None,
                None,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct LotForm {
    code: String,
    production_date: String,
    #[serde(default)]
    expiry_date: String,
}

async fn create_lot(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<LotForm>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let model = load_model(&state, path.into_inner()).await?;
    let mut errors = Errors::new();
    let code = f.form.code.trim();
    if let Err(e) = check_cs82(code) {
        errors.insert(
            "code",
            capitalise(&e.to_string().replace("serial number", "lot code")),
        );
    }
    let produced = NaiveDate::parse_from_str(f.form.production_date.trim(), "%Y-%m-%d").ok();
    if produced.is_none() {
        errors.insert(
            "production_date",
            "Enter the production date as YYYY-MM-DD.".into(),
        );
    }
    let expiry = match f.form.expiry_date.trim() {
        "" => None,
        s => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) if produced.is_none_or(|p| d >= p) => Some(d),
            Ok(_) => {
                errors.insert(
                    "expiry_date",
                    "The expiry date cannot be before the production date.".into(),
                );
                None
            }
            Err(_) => {
                errors.insert(
                    "expiry_date",
                    "Enter the expiry date as YYYY-MM-DD, or leave it empty.".into(),
                );
                None
            }
        },
    };
    if let (true, Some(produced)) = (errors.is_empty(), produced) {
        let created = {
            let mut conn = state.pool.get().await?;
            Lot::create(&mut conn, model.id, code, produced, expiry).await?
        };
        if created.is_some() {
            audit(
                &req,
                &state,
                admin.account.id,
                "lot_created",
                &format!("{} lot {code}", model.gtin),
            )
            .await?;
            return Ok(see_other(&format!(
                "/admin/models/{}?notice=lot-created",
                model.id
            )));
        }
        errors.insert("code", format!("This model already has a lot {code}."));
    }
    let lot = (
        f.form.code.as_str(),
        f.form.production_date.as_str(),
        f.form.expiry_date.as_str(),
        &errors,
    );
    model_page(
        &admin,
        &state,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(&model),
        &form_of(&model),
        &Errors::new(),
        None,
        lot,
        None,
        None,
    )
    .await
}

// ---- stock: expiry and FEFO picking -------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/stock.html")]
struct StockPage {
    days: i32,
    today: NaiveDate,
    expiring: Vec<crate::db::stock::ExpiringStock>,
    locations: Vec<Location>,
    /// (gtin, "brand name")
    models: Vec<(String, String)>,
    pick_location: String,
    pick_gtin: String,
    pick_quantity: String,
    pick_wanted: usize,
    pick_error: Option<String>,
    pick: Option<Vec<crate::db::stock::PickLine>>,
}

#[derive(Deserialize)]
pub struct StockQuery {
    days: Option<String>,
    location: Option<String>,
    gtin: Option<String>,
    quantity: Option<String>,
}

pub async fn stock(
    _user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<StockQuery>,
) -> Result<HttpResponse, AppError> {
    let days = q
        .days
        .as_deref()
        .and_then(|d| d.trim().parse::<i32>().ok())
        .filter(|d| (0..=3650).contains(d))
        .unwrap_or(90);
    let mut conn = state.pool.get().await?;
    let expiring = crate::db::stock::expiring(&mut conn, days).await?;
    let locations = Location::all(&mut conn).await?;
    let models: Vec<(String, String)> = ProductModel::all(&mut conn)
        .await?
        .into_iter()
        .map(|m| (m.gtin, format!("{} {}", m.brand, m.name)))
        .collect();
    let mut page = StockPage {
        days,
        today: chrono::Utc::now().date_naive(),
        expiring,
        locations,
        models,
        pick_location: q.location.clone().unwrap_or_default(),
        pick_gtin: q.gtin.clone().unwrap_or_default(),
        pick_quantity: q.quantity.clone().unwrap_or_else(|| "10".into()),
        pick_wanted: 0,
        pick_error: None,
        pick: None,
    };
    let mut status = StatusCode::OK;
    if let (Some(location), Some(gtin)) = (&q.location, &q.gtin) {
        match page.pick_quantity.trim().parse::<i64>() {
            Ok(n) if (1..=10_000).contains(&n) => {
                page.pick_wanted = n as usize;
                page.pick = Some(crate::db::stock::fefo_pick(&mut conn, location, gtin, n).await?);
            }
            _ => {
                page.pick_error = Some("Ask for 1 to 10,000 units.".into());
                status = StatusCode::BAD_REQUEST;
            }
        }
    }
    Ok(render(status, &page))
}

// ---- serial generation: preview (GET), then commit (POST) ------------------------------

struct Preview {
    count: u64,
    start: u64,
    first: String,
    last: String,
}

#[derive(Template)]
#[template(path = "admin/generate.html")]
struct GeneratePage {
    model_id: i64,
    model_name: String,
    format: Option<String>,
    lots: Vec<String>,
    locations: Vec<String>,
    lot: String,
    count: String,
    location: String,
    error: Option<String>,
    preview: Option<Preview>,
    csrf_token: String,
}

#[derive(Deserialize)]
pub struct GenerateQuery {
    lot: Option<String>,
    count: Option<String>,
    location: Option<String>,
    start: Option<String>,
}

/// Largest batch generated at once.
const MAX_GENERATE: u64 = 1_000_000;

/// Checks a generation request; returns the page (with the preview or the error) and, when
/// valid, what to insert.
async fn plan_generation(
    state: &AppState,
    model: &ProductModel,
    q: &GenerateQuery,
    csrf_token: String,
) -> Result<(GeneratePage, Option<(Lot, Option<i64>, Vec<String>)>), AppError> {
    let mut conn = state.pool.get().await?;
    let lots = Lot::for_model(&mut conn, model.id).await?;
    let locations = Location::all(&mut conn).await?;
    let format = model.format();
    let mut page = GeneratePage {
        model_id: model.id,
        model_name: format!("{} {}", model.brand, model.name),
        format: format.as_ref().map(|f| f.pattern().to_owned()),
        lots: lots.iter().map(|l| l.code.clone()).collect(),
        locations: locations.iter().map(|l| l.code.clone()).collect(),
        lot: q
            .lot
            .clone()
            .unwrap_or_else(|| lots.first().map(|l| l.code.clone()).unwrap_or_default()),
        count: q.count.clone().unwrap_or_else(|| "100".into()),
        location: q.location.clone().unwrap_or_default(),
        error: None,
        preview: None,
        csrf_token,
    };
    let (Some(format), Some(_)) = (format, q.count.as_ref()) else {
        return Ok((page, None));
    };
    let Some(lot) = lots.into_iter().find(|l| l.code == page.lot) else {
        page.error =
            Some("Choose one of this model's lots (add a lot on the model page first).".into());
        return Ok((page, None));
    };
    let location_id = match page.location.as_str() {
        "" => None,
        code => match locations.iter().find(|l| l.code == code) {
            Some(l) => Some(l.id),
            None => {
                page.error = Some("Choose a location from the list.".into());
                return Ok((page, None));
            }
        },
    };
    let count = match page.count.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_GENERATE).contains(&n) => n,
        _ => {
            page.error = Some(format!("Generate 1 to {MAX_GENERATE} units at a time."));
            return Ok((page, None));
        }
    };
    let start = catalogue_next(&mut conn, model, &format).await?;
    if start + count > format.capacity() {
        let left = format.capacity().saturating_sub(start);
        page.error = Some(format!(
            "The format {} has room for {left} more serial(s) on this model.",
            format.pattern()
        ));
        return Ok((page, None));
    }
    let serials: Vec<String> = (start..start + count)
        .filter_map(|n| format.render(n))
        .collect();
    page.preview = Some(Preview {
        count,
        start,
        first: serials.first().cloned().unwrap_or_default(),
        last: serials.last().cloned().unwrap_or_default(),
    });
    Ok((page, Some((lot, location_id, serials))))
}

async fn catalogue_next(
    conn: &mut diesel_async::AsyncPgConnection,
    model: &ProductModel,
    format: &SerialFormat,
) -> Result<u64, AppError> {
    Ok(crate::db::catalogue::next_serial_number(conn, model, format).await?)
}

pub async fn generate_page(
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    q: web::Query<GenerateQuery>,
) -> Result<HttpResponse, AppError> {
    let model = load_model(&state, path.into_inner()).await?;
    let (page, _) = plan_generation(&state, &model, &q, user.session.csrf_token.clone()).await?;
    let status = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(status, &page))
}

pub async fn generate(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    f: CsrfForm<GenerateQuery>,
) -> Result<HttpResponse, AppError> {
    let admin = admin_of(&f)?;
    let model = load_model(&state, path.into_inner()).await?;
    let (mut page, plan) =
        plan_generation(&state, &model, &f.form, admin.session.csrf_token.clone()).await?;
    let Some((lot, location_id, serials)) = plan else {
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    };
    // The preview promised these numbers; if someone generated meanwhile, show the new preview.
    let promised = f.form.start.as_deref().and_then(|s| s.parse::<u64>().ok());
    if promised != page.preview.as_ref().map(|p| p.start) {
        page.error = Some("Other serials were created since the preview. Check the new preview below and confirm again.".into());
        return Ok(render(StatusCode::CONFLICT, &page));
    }
    let count = serials.len();
    let actor = format!("admin:{}", admin.account.email);
    let mut conn = state.pool.get().await?;
    let inserted = conn
        .transaction::<_, AppError, _>(async |conn| {
            Ok(crate::db::catalogue::insert_generated(
                conn,
                &model,
                &lot,
                location_id,
                serials,
                &actor,
            )
            .await?)
        })
        .await?;
    drop(conn);
    if !inserted {
        page.error =
            Some("Some of these serials were taken at the same moment. Preview again.".into());
        page.preview = None;
        return Ok(render(StatusCode::CONFLICT, &page));
    }
    audit(
        &req,
        &state,
        admin.account.id,
        "units_generated",
        &format!("{} {count} units in lot {}", model.gtin, lot.code),
    )
    .await?;
    Ok(see_other(&format!(
        "/admin/models/{}?notice=units-generated",
        model.id
    )))
}

// ---- reports: stock on hand ---------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/onhand.html")]
struct OnHandPage {
    total: i64,
    /// SVG built by `charts::bar_chart`, which escapes every label.
    chart: String,
    rows: Vec<crate::db::stock::OnHand>,
}

pub async fn on_hand(
    _user: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let rows = crate::db::stock::on_hand(&mut conn).await?;
    let mut by_model: Vec<super::charts::Bar> = Vec::new();
    for r in &rows {
        match by_model.iter_mut().find(|b| b.label == r.product) {
            Some(b) => b.value += r.units,
            None => by_model.push(super::charts::Bar {
                label: r.product.clone(),
                value: r.units,
            }),
        }
    }
    let total = rows.iter().map(|r| r.units).sum();
    let chart = super::charts::bar_chart("Units in stock by model", &by_model);
    Ok(render(StatusCode::OK, &OnHandPage { total, chart, rows }))
}

pub async fn on_hand_csv(
    _user: SignedIn,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let rows = crate::db::stock::on_hand(&mut conn).await?;
    let records = rows.iter().map(|r| {
        vec![
            r.gtin.clone(),
            r.product.clone(),
            r.location.clone().unwrap_or_default(),
            r.lot.clone().unwrap_or_default(),
            r.units.to_string(),
        ]
    });
    super::csv_download(
        "stock-on-hand.csv",
        &["gtin", "product", "location", "lot", "units"],
        records,
    )
}

// ---- reports: turnover --------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/turnover.html")]
struct TurnoverPage {
    from: NaiveDate,
    to: NaiveDate,
    error: Option<String>,
    /// SVG built by `charts::bar_chart`, which escapes every label.
    chart: String,
    rows: Vec<crate::db::stock::Turnover>,
}

#[derive(Deserialize)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The chosen period (default: the last 365 days), or why it is not valid.
fn period(q: &PeriodQuery) -> (NaiveDate, NaiveDate, Option<String>) {
    let today = chrono::Utc::now().date_naive();
    let default_from = today - chrono::Days::new(365);
    let parse = |v: &Option<String>| {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d"))
    };
    match (parse(&q.from), parse(&q.to)) {
        (Some(Err(_)), _) | (_, Some(Err(_))) => (
            default_from,
            today,
            Some("Enter dates as YYYY-MM-DD.".into()),
        ),
        (f, t) => {
            let from = f.and_then(Result::ok).unwrap_or(default_from);
            let to = t.and_then(Result::ok).unwrap_or(today);
            if from > to {
                (
                    to,
                    from,
                    Some("The start was after the end; the dates were swapped.".into()),
                )
            } else {
                (from, to, None)
            }
        }
    }
}

pub async fn turnover(
    _user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<PeriodQuery>,
) -> Result<HttpResponse, AppError> {
    let (from, to, error) = period(&q);
    let mut conn = state.pool.get().await?;
    let rows = crate::db::stock::turnover(&mut conn, from, to).await?;
    let bars: Vec<super::charts::Bar> = rows
        .iter()
        .map(|r| super::charts::Bar {
            label: r.product.clone(),
            value: r.shipped,
        })
        .collect();
    let chart = super::charts::bar_chart("Units shipped by model", &bars);
    let status = if error.as_deref().is_some_and(|e| e.starts_with("Enter")) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(render(
        status,
        &TurnoverPage {
            from,
            to,
            error,
            chart,
            rows,
        },
    ))
}

pub async fn turnover_csv(
    _user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<PeriodQuery>,
) -> Result<HttpResponse, AppError> {
    let (from, to, _) = period(&q);
    let mut conn = state.pool.get().await?;
    let rows = crate::db::stock::turnover(&mut conn, from, to).await?;
    let records = rows.iter().map(|r| {
        vec![
            r.gtin.clone(),
            r.product.clone(),
            from.to_string(),
            to.to_string(),
            r.shipped.to_string(),
            r.sold.to_string(),
        ]
    });
    super::csv_download(
        "turnover.csv",
        &["gtin", "product", "from", "to", "shipped", "sold"],
        records,
    )
}
