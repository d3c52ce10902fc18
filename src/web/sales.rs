//! Sales linkage for admins (`/admin/sales`): link scanned or typed serials to a sale, and
//! unlink a unit with a reason. Files of sales go through the import (CLI or upload).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::account::Field;
use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, render, see_other};
use crate::db::sales::{SaleLine, SaleSummary};
use crate::domain::import::RowError;
use crate::domain::sales::{SaleHeader, unlink_reason};

/// Lines one form may link; more go through the import.
const MAX_FORM_LINES: usize = 500;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sales", web::get().to(sales_page))
        .route("/sales", web::post().to(link))
        .route("/units/{id}/unlink", web::post().to(unlink));
}

#[derive(Deserialize, Default)]
pub struct SaleForm {
    #[serde(default)]
    order_ref: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    sold_on: String,
    #[serde(default)]
    customer_email: String,
    #[serde(default)]
    serials: String,
}

#[derive(Template)]
#[template(path = "admin/sales.html")]
struct SalesPage {
    csrf_token: String,
    notice: Option<String>,
    fields: Vec<Field>,
    serials: String,
    serials_error: Option<String>,
    line_errors: Vec<RowError>,
    recent: Vec<SaleSummary>,
}

fn fields(form: &SaleForm, errors: &[(&'static str, String)]) -> Vec<Field> {
    let err = |name: &str| {
        errors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, e)| super::capitalise(e))
    };
    vec![
        Field::new(
            "order_ref",
            "Order, invoice or receipt number",
            "text",
            "off",
        )
        .value(&form.order_ref)
        .error(err("order_ref")),
        Field::new("channel", "Channel or retailer", "text", "off")
            .value(&form.channel)
            .hint("Where it was sold: your web shop, a retailer's name, a marketplace.")
            .error(err("channel")),
        Field::new("sold_on", "Sale date", "date", "off")
            .value(&form.sold_on)
            .error(err("sold_on")),
        Field::new("customer_email", "Customer email", "email", "off")
            .value(&form.customer_email)
            .optional()
            .hint("Optional. Used only for safety and recall notices.")
            .error(err("customer_email")),
    ]
}

async fn page(
    state: &AppState,
    user: &SignedIn,
    status: StatusCode,
    form: &SaleForm,
    errors: &[(&'static str, String)],
    line_errors: Vec<RowError>,
    notice: Option<String>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let recent = SaleSummary::recent(&mut conn, 50).await?;
    let serials_error = errors
        .iter()
        .find(|(n, _)| *n == "serials")
        .map(|(_, e)| super::capitalise(e))
        .or_else(|| {
            (!line_errors.is_empty()).then(|| {
                format!(
                    "{} line(s) cannot be linked; nothing was linked. Correct or remove them and send again.",
                    line_errors.len()
                )
            })
        });
    Ok(render(
        status,
        &SalesPage {
            csrf_token: user.session.csrf_token.clone(),
            notice,
            fields: fields(form, errors),
            serials: form.serials.clone(),
            serials_error,
            line_errors,
            recent,
        },
    ))
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    linked: Option<u64>,
    order: Option<String>,
}

async fn sales_page(
    user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    let notice = q.linked.map(|n| {
        format!(
            "Linked {n} unit(s) to order {}.",
            q.order.as_deref().unwrap_or("")
        )
    });
    page(
        &state,
        &user,
        StatusCode::OK,
        &SaleForm::default(),
        &[],
        vec![],
        notice,
    )
    .await
}

/// The serials of a form as sale lines; the GTIN, when a line carries one, picks the model.
fn serial_lines(
    state: &AppState,
    text: &str,
    sale: &SaleHeader,
) -> Result<Vec<SaleLine>, Vec<RowError>> {
    Ok(super::scanned_lines(state, text)?
        .into_iter()
        .map(|l| SaleLine {
            line: l.line,
            model_id: l.model.map(|(id, _)| id),
            serial_key: match l.model {
                Some((_, false)) => l.serial.to_ascii_uppercase(),
                _ => l.serial.clone(),
            },
            serial: l.serial,
            sale: sale.clone(),
        })
        .collect())
}

async fn link(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    form: CsrfForm<SaleForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.form;
    let today = chrono::Utc::now().date_naive();
    let header = SaleHeader::parse(
        &form.order_ref,
        &form.channel,
        &form.sold_on,
        &form.customer_email,
        today,
    );
    let count = form
        .serials
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    let mut errors = header.as_ref().err().cloned().unwrap_or_default();
    if count == 0 {
        errors.push(("serials", "scan or type at least one serial number".into()));
    } else if count > MAX_FORM_LINES {
        errors.push((
            "serials",
            format!("at most {MAX_FORM_LINES} serials at once; import a CSV file for more"),
        ));
    }
    let sale = match header {
        Ok(h) if errors.is_empty() => h,
        _ => {
            return page(
                &state,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &errors,
                vec![],
                None,
            )
            .await;
        }
    };
    let lines = match serial_lines(&state, &form.serials, &sale) {
        Ok(l) => l,
        Err(line_errors) => {
            return page(
                &state,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                &[],
                line_errors,
                None,
            )
            .await;
        }
    };
    let actor = format!("admin:{}", user.account.email);
    let mut client = state.bulk_client().await?;
    let outcome = crate::db::sales::link_lines(&mut client, &lines, &actor).await?;
    if !outcome.ok() {
        return page(
            &state,
            &user,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            &[],
            outcome.errors,
            None,
        )
        .await;
    }
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "sale_linked",
        &format!(
            "{} unit(s) to order {} ({}, {})",
            outcome.inserted, sale.order_ref, sale.channel, sale.sold_on
        ),
    )
    .await?;
    Ok(see_other(&format!(
        "/admin/sales?linked={}&order={}",
        outcome.inserted,
        super::encode_query(&sale.order_ref)
    )))
}

#[derive(Deserialize)]
pub struct UnlinkForm {
    #[serde(default)]
    reason: String,
}

async fn unlink(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: CsrfForm<UnlinkForm>,
) -> Result<HttpResponse, AppError> {
    let unit_id = path.into_inner();
    let reason = match unlink_reason(&form.form.reason) {
        Ok(r) => r,
        Err(e) => {
            return Ok(see_other(&format!(
                "/staff/units/{unit_id}?unlink_error={}",
                super::encode_query(&super::capitalise(&e))
            )));
        }
    };
    let actor = format!("admin:{}", user.account.email);
    let mut conn = state.pool.get().await?;
    if !crate::db::sales::unlink(&mut conn, unit_id, &reason, &actor).await? {
        return Err(AppError::Conflict(
            "This unit is not linked to a sale (any more). Reload its page to see its history."
                .into(),
        ));
    }
    drop(conn);
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "sale_unlinked",
        &format!("unit {unit_id}: {reason}"),
    )
    .await?;
    Ok(see_other(&format!(
        "/staff/units/{unit_id}?notice=unlinked"
    )))
}
