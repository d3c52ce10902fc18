//! Warranty extensions (admins): extra months or a later end date, for one unit or a whole lot,
//! always with a reason. `/admin/warranty/extend?unit={id}` or `?lot={id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::account::Field;
use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, render, see_other};
use crate::db::warranty::{ExtensionRow, Target};
use crate::domain::warranty::Extension;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/warranty/extend", web::get().to(extend_page))
        .route("/warranty/extend", web::post().to(extend));
}

#[derive(Deserialize, Default)]
pub struct TargetQuery {
    unit: Option<i64>,
    lot: Option<i64>,
}

#[derive(Deserialize, Default)]
pub struct ExtendForm {
    unit: Option<i64>,
    lot: Option<i64>,
    #[serde(default)]
    extra_months: String,
    #[serde(default)]
    ends_on: String,
    #[serde(default)]
    reason: String,
}

#[derive(Template)]
#[template(path = "admin/extend.html")]
struct ExtendPage {
    csrf_token: String,
    what: String,
    back: String,
    hidden: (&'static str, i64),
    fields: Vec<Field>,
    extensions: Vec<ExtensionRow>,
    has_errors: bool,
}

/// What the extension is for, described, with the page to go back to and the lot (for listing).
struct Resolved {
    target: Target,
    what: String,
    back: String,
    unit_id: i64,
    lot_id: Option<i64>,
}

async fn resolve(
    state: &AppState,
    unit: Option<i64>,
    lot: Option<i64>,
) -> Result<Resolved, AppError> {
    use crate::db::schema::{lots, product_models, units};
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let mut conn = state.pool.get().await?;
    let missing = || AppError::not_found("Not found", "There is no such unit or lot.");
    match (unit, lot) {
        (Some(id), None) => {
            let (serial, lot_id, name): (String, Option<i64>, String) = units::table
                .inner_join(product_models::table)
                .filter(units::id.eq(id))
                .select((units::serial, units::lot_id, product_models::name))
                .first(&mut conn)
                .await
                .optional()?
                .ok_or_else(missing)?;
            Ok(Resolved {
                target: Target::Unit(id),
                what: format!("unit {serial} ({name})"),
                back: format!("/staff/units/{id}"),
                unit_id: id,
                lot_id,
            })
        }
        (None, Some(id)) => {
            let (code, model_id, name): (String, i64, String) = lots::table
                .inner_join(product_models::table)
                .filter(lots::id.eq(id))
                .select((lots::code, lots::model_id, product_models::name))
                .first(&mut conn)
                .await
                .optional()?
                .ok_or_else(missing)?;
            Ok(Resolved {
                target: Target::Lot(id),
                what: format!("every unit of lot {code} ({name})"),
                back: format!("/admin/models/{model_id}"),
                unit_id: -1,
                lot_id: Some(id),
            })
        }
        _ => Err(AppError::BadRequest(
            "Say which unit or which lot to extend (one of them).".into(),
        )),
    }
}

async fn page(
    state: &AppState,
    user: &SignedIn,
    status: StatusCode,
    r: &Resolved,
    form: &ExtendForm,
    error: Option<(&'static str, String)>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let extensions = crate::db::warranty::extensions_of(&mut conn, r.unit_id, r.lot_id).await?;
    let err = |name: &str| {
        error
            .as_ref()
            .filter(|(f, _)| *f == name)
            .map(|(_, e)| super::capitalise(e))
    };
    let fields = vec![
        Field::new("extra_months", "Extra months", "number", "off")
            .value(&form.extra_months)
            .optional()
            .hint("1 to 120 months added to the term; or leave empty and give a new end date.")
            .error(err("extra_months")),
        Field::new("ends_on", "New end date", "date", "off")
            .value(&form.ends_on)
            .optional()
            .hint("The warranty then covers at least until this day. An extension never shortens a warranty.")
            .error(err("ends_on")),
        Field::new("reason", "Reason", "text", "off")
            .value(&form.reason)
            .hint("Recorded with the extension, e.g. goodwill after a repair delay, lot with a known defect.")
            .error(err("reason")),
    ];
    Ok(render(
        status,
        &ExtendPage {
            csrf_token: user.session.csrf_token.clone(),
            what: r.what.clone(),
            back: r.back.clone(),
            hidden: match r.target {
                Target::Unit(id) => ("unit", id),
                Target::Lot(id) => ("lot", id),
            },
            fields,
            extensions,
            has_errors: error.is_some(),
        },
    ))
}

async fn extend_page(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<TargetQuery>,
) -> Result<HttpResponse, AppError> {
    let r = resolve(&state, q.unit, q.lot).await?;
    page(
        &state,
        &user,
        StatusCode::OK,
        &r,
        &ExtendForm::default(),
        None,
    )
    .await
}

async fn extend(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    form: CsrfForm<ExtendForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.form;
    let r = resolve(&state, form.unit, form.lot).await?;
    let today = chrono::Utc::now().date_naive();
    let ext = match Extension::parse(&form.extra_months, &form.ends_on, today) {
        Ok(e) => e,
        Err(e) => {
            return page(
                &state,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                &r,
                &form,
                Some(e),
            )
            .await;
        }
    };
    let reason = match crate::domain::sales::unlink_reason(&form.reason) {
        Ok(r) => r,
        Err(_) => {
            let e = (
                "reason",
                "say why the warranty is extended, in at most 200 characters".to_owned(),
            );
            return page(
                &state,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                &r,
                &form,
                Some(e),
            )
            .await;
        }
    };
    let mut conn = state.pool.get().await?;
    crate::db::warranty::extend(&mut conn, r.target, ext, &reason, user.account.id).await?;
    drop(conn);
    let what = match ext {
        Extension::Months(m) => format!("{m} extra months"),
        Extension::Until(d) => format!("until {d}"),
    };
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "warranty_extended",
        &format!("{}: {what}; {reason}", r.what),
    )
    .await?;
    Ok(see_other(&format!("{}?notice=extended", r.back)))
}
