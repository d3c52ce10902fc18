//! The service desk (`/staff`), for staff and admins. Guarded in `web::configure`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::render;
use super::session::SignedIn;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(home))
        .route("/", web::get().to(home))
        .route("/units", web::get().to(find_units))
        .route("/units/{id}", web::get().to(unit_page))
        .configure(super::stations::routes)
        .configure(super::transfers::routes)
        .configure(super::claims_staff::routes)
        .configure(super::claim_reports::staff_routes);
}

#[derive(Template)]
#[template(path = "staff/units.html")]
struct FindPage {
    serial: String,
    error: Option<String>,
    searched: bool,
    /// (unit id, serial, "brand name · GTIN")
    results: Vec<(i64, String, String)>,
}

#[derive(serde::Deserialize)]
pub struct FindQuery {
    serial: Option<String>,
}

/// Staff find a unit by anything the lookup box accepts (typed, scanned or a product link).
async fn find_units(
    _user: SignedIn,
    state: web::Data<super::AppState>,
    q: web::Query<FindQuery>,
) -> Result<HttpResponse, super::AppError> {
    let typed = q.serial.clone().unwrap_or_default();
    if typed.trim().is_empty() {
        return Ok(render(
            StatusCode::OK,
            &FindPage {
                serial: typed,
                error: None,
                searched: false,
                results: vec![],
            },
        ));
    }
    let query = match crate::domain::lookup::LookupQuery::parse(&typed, None) {
        Ok(q) => q,
        Err(e) => {
            return Ok(render(
                StatusCode::BAD_REQUEST,
                &FindPage {
                    serial: typed,
                    error: Some(e.message),
                    searched: false,
                    results: vec![],
                },
            ));
        }
    };
    let gtin = query.gtin.map(|g| g.as_string());
    let conn = state.pool.get().await?;
    let found = crate::db::lookup::UnitMatch::find(
        &conn,
        &state.catalogue(),
        &query.serial,
        gtin.as_deref(),
    )
    .await?;
    if let [one] = found.as_slice() {
        return Ok(super::see_other(&format!("/staff/units/{}", one.unit.id)));
    }
    let results = found
        .iter()
        .map(|m| {
            (
                m.unit.id,
                m.unit.serial.clone(),
                format!("{} {} · GTIN {}", m.model.brand, m.model.name, m.model.gtin),
            )
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &FindPage {
            serial: typed,
            error: None,
            searched: true,
            results,
        },
    ))
}

#[derive(Template)]
#[template(path = "staff/unit.html")]
struct UnitPage {
    h: crate::db::lookup::UnitHistory,
    created: String,
    sales: Vec<crate::db::sales::UnitSale>,
    warranty: String,
    is_admin: bool,
    csrf_token: String,
    notice: Option<String>,
    unlink_error: Option<String>,
    genealogy: crate::db::genealogy::Genealogy,
    component_error: Option<String>,
    registrations: Vec<crate::db::registrations::StaffRegistration>,
    /// (id, number, status label, filed)
    claims: Vec<(i64, String, &'static str, String)>,
}

#[derive(serde::Deserialize)]
pub struct UnitQuery {
    notice: Option<String>,
    unlink_error: Option<String>,
    component_error: Option<String>,
}

async fn unit_page(
    user: SignedIn,
    state: web::Data<super::AppState>,
    path: web::Path<i64>,
    q: web::Query<UnitQuery>,
) -> Result<HttpResponse, super::AppError> {
    let mut conn = state.pool.get().await?;
    let h = crate::db::lookup::UnitHistory::load(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| {
            super::AppError::not_found("No such unit", "There is no unit with this number.")
        })?;
    let created = h.created_at.format("%Y-%m-%d %H:%M UTC").to_string();
    let sales = crate::db::sales::UnitSale::of_unit(&mut conn, h.unit_id).await?;
    let warranty = h.warranty_text(chrono::Utc::now().date_naive());
    let notice = match q.notice.as_deref() {
        Some("unlinked") => Some("Unlinked from its sale.".to_owned()),
        Some("installed") => Some("Component installed.".to_owned()),
        Some("removed") => Some("Component removed.".to_owned()),
        Some("extended") => Some("Warranty extended.".to_owned()),
        _ => None,
    };
    let genealogy = crate::db::genealogy::Genealogy::of(&mut conn, h.unit_id).await?;
    let registrations =
        crate::db::registrations::StaffRegistration::of_unit(&mut conn, h.unit_id).await?;
    let claims = crate::db::claims::Claim::of_unit(&mut conn, h.unit_id)
        .await?
        .into_iter()
        .map(|c| {
            let label = c.state().map_or("", crate::domain::claims::Status::label);
            (
                c.id,
                c.number,
                label,
                c.filed_at.format("%Y-%m-%d").to_string(),
            )
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &UnitPage {
            h,
            created,
            sales,
            warranty,
            is_admin: user.account.role() == crate::domain::account::Role::Admin,
            csrf_token: user.session.csrf_token.clone(),
            notice,
            unlink_error: q.unlink_error.clone(),
            genealogy,
            component_error: q.component_error.clone(),
            registrations,
            claims,
        },
    ))
}

#[derive(Template)]
#[template(path = "staff/home.html")]
struct StaffHome {
    email: String,
    role: String,
    csrf_token: String,
    claims: super::claim_reports::DashboardView,
}

async fn home(
    user: SignedIn,
    state: web::Data<super::AppState>,
) -> Result<HttpResponse, super::AppError> {
    let claims = super::claim_reports::dashboard(&state, user.account.id).await?;
    Ok(render(
        StatusCode::OK,
        &StaffHome {
            email: user.account.email.clone(),
            role: user.account.role.clone(),
            csrf_token: user.session.csrf_token.clone(),
            claims,
        },
    ))
}
