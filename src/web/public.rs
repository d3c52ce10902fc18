//! Public pages: the lookup form, lookup results, product model pages (reached through their
//! GS1 Digital Link, see `resolver`), health checks and the stylesheet. None of them reveals
//! anything about an owner.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::views::{
    ChooserPage, HomePage, LookupForm, ModelPage, ModelSummary, UnitPage, UnknownPage,
};
use super::{AppError, AppState, render};
use crate::db::catalogue::ProductModel;
use crate::db::lookup::UnitMatch;
use crate::db::readers::Readers;
use crate::domain::Gtin;
use crate::domain::lookup::{LookupField, LookupQuery};
use crate::domain::serial::check_cs82;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/check", web::get().to(check))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/static/{name}", web::get().to(static_file))
        .route(
            "/models/{id}/picture",
            web::get().to(super::pictures::serve),
        );
    super::resolver::routes(cfg);
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// The models listed under "where to find the serial", when there are few enough to list.
fn listed_models(state: &AppState) -> Vec<ModelSummary> {
    let catalogue = state.catalogue();
    if catalogue.len() > 12 {
        Vec::new()
    } else {
        catalogue.iter().map(ModelSummary::from).collect()
    }
}

async fn home(state: web::Data<AppState>) -> HttpResponse {
    render(
        StatusCode::OK,
        &HomePage {
            form: LookupForm::default(),
            models: listed_models(&state),
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct CheckParams {
    serial: Option<String>,
    gtin: Option<String>,
    /// The lot named by a scanned code or Digital Link, to point out a mismatch.
    lot: Option<String>,
}

/// Serves the form again with a 400, the reason next to the field and what was typed kept.
fn invalid(
    state: &AppState,
    mut form: LookupForm,
    field: LookupField,
    message: String,
) -> HttpResponse {
    match field {
        LookupField::Serial => form.serial_error = Some(message),
        LookupField::Gtin => form.gtin_error = Some(message),
    }
    render(
        StatusCode::BAD_REQUEST,
        &HomePage {
            form,
            models: listed_models(state),
        },
    )
}

async fn check(
    req: HttpRequest,
    state: web::Data<AppState>,
    readers: web::Data<Readers>,
    params: web::Query<CheckParams>,
) -> Result<HttpResponse, AppError> {
    let params = params.into_inner();
    let form = LookupForm {
        serial: params.serial.clone().unwrap_or_default(),
        gtin: params.gtin.clone().unwrap_or_default(),
        ..Default::default()
    };
    state.limiter.check(&req)?;
    let query = match LookupQuery::parse(&form.serial, Some(&form.gtin)) {
        Ok(q) => q,
        Err(e) => return Ok(invalid(&state, form, e.field, e.message)),
    };
    let gtin = query.gtin.map(|g| g.as_string());
    let catalogue = state.catalogue();

    // Typos against a model's declared serial format are refused before any database query.
    if let Some(g) = &gtin
        && let Some(model) = catalogue.iter().find(|m| &m.gtin == g)
        && let Some(format) = model.format()
        && !format.matches(query.serial.as_str(), model.serials_case_sensitive)
    {
        let message = format!(
            "Serial numbers of the {} {} are {} (for example {}). You will find it {}.",
            model.brand,
            model.name,
            format.describe(),
            format.example(),
            model.serial_hint
        );
        return Ok(invalid(&state, form, LookupField::Serial, message));
    }
    if gtin.is_none() && !catalogue.is_empty() {
        let formats: Option<Vec<_>> = catalogue
            .iter()
            .map(|m| m.format().map(|f| (f, m.serials_case_sensitive)))
            .collect();
        if let Some(formats) = formats
            && !formats
                .iter()
                .any(|(f, cs)| f.matches(query.serial.as_str(), *cs))
        {
            let message =
                "None of our products has a serial number like this. Check it against the label: \
                           the letters O and I are easily mistaken for the digits 0 and 1."
                    .to_owned();
            return Ok(invalid(&state, form, LookupField::Serial, message));
        }
    }

    let (matches, recalls) = readers
        .run(&state.pool, async |conn| {
            UnitMatch::find_with_recalls(conn, &catalogue, &query.serial, gtin.as_deref()).await
        })
        .await?;
    // A `lot` from the address is shown in a notice, so only a real lot code counts (never
    // free text someone put into a link).
    let address_lot = params.lot.as_deref().filter(|l| check_cs82(l).is_ok());
    let scanned_lot = query.lot.as_deref().or(address_lot);
    match matches.as_slice() {
        [one] => {
            let recalls: Vec<_> = recalls
                .into_iter()
                .filter(|r| r.unit_id == one.unit.id)
                .collect();
            Ok(render(
                StatusCode::OK,
                &UnitPage::new(one, today(), scanned_lot, &recalls),
            ))
        }
        [] => {
            let model = gtin
                .as_ref()
                .and_then(|g| catalogue.iter().find(|m| &m.gtin == g))
                .map(ModelSummary::from);
            let gtin_unknown = gtin.is_some() && model.is_none();
            let page = UnknownPage {
                gtin_unknown,
                model,
                form: LookupForm {
                    serial: query.serial.to_string(),
                    gtin: gtin.clone().unwrap_or_default(),
                    gtin_error: gtin_unknown.then(|| {
                        "We have no product with this GTIN. Check it, or leave it empty.".to_owned()
                    }),
                    ..Default::default()
                },
                models: listed_models(&state),
            };
            Ok(render(StatusCode::NOT_FOUND, &page))
        }
        many => {
            let models = many.iter().map(|m| ModelSummary::from(&m.model)).collect();
            Ok(render(
                StatusCode::OK,
                &ChooserPage {
                    serial: query.serial.to_string(),
                    models,
                },
            ))
        }
    }
}

/// The product model page, the answer of a model's Digital Link (`/01/{gtin}`).
pub(super) async fn model_page(state: &AppState, gtin: &Gtin) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let model = ProductModel::find_by_gtin(&mut conn, gtin).await?.ok_or_else(|| {
        AppError::not_found("Product not found", format!("We have no product with GTIN {gtin} in our catalogue. Check the number under the barcode."))
    })?;
    let terms = model.terms();
    let picture = crate::db::pictures::version(&mut conn, model.id)
        .await?
        .map(|v| format!("/models/{}/picture?v={}", model.id, v.timestamp()));
    let recalls = crate::db::recalls::of_model(&mut conn, model.id)
        .await?
        .into_iter()
        .map(|r| (r.code, crate::domain::recall::heading(&r.title)))
        .collect();
    let page = ModelPage {
        recalls,
        model: ModelSummary::from(&model),
        picture,
        description: model.description.clone(),
        warranty_terms: format!(
            "{} months, counted {}.",
            terms.months,
            terms.start_rule.describe(terms.grace_days as i32)
        ),
        form: LookupForm {
            gtin: model.gtin.clone(),
            ..Default::default()
        },
    };
    Ok(render(StatusCode::OK, &page))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("ok")
}

/// Ready when a database round trip succeeds within two seconds.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    use diesel_async::RunQueryDsl;
    let probe = async {
        let mut conn = state.pool.get().await.map_err(|e| e.to_string())?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), probe).await {
        Ok(Ok(_)) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain; charset=utf-8")
                .body("database unreachable")
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("database timeout"),
    }
}

/// The static files, built into the binary.
const STATIC_FILES: [(&str, &str, &str); 3] = [
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
    (
        "labels.css",
        "text/css; charset=utf-8",
        include_str!("../../static/labels.css"),
    ),
    (
        "station.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/station.js"),
    ),
];

async fn static_file(name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (_, content_type, body) = STATIC_FILES
        .iter()
        .find(|(n, _, _)| *n == name.as_str())
        .ok_or_else(|| {
            AppError::not_found("Page not found", "There is no file at this address.")
        })?;
    Ok(HttpResponse::Ok()
        .content_type(*content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(*body))
}
