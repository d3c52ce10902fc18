//! Printable label sheets (`/admin/labels`): for every unit of a lot, or for units chosen by
//! serial, a QR code with the unit's GS1 Digital Link, a GS1 DataMatrix with its element string
//! and the human-readable identifiers. Mounted under `/admin`, so the admin guard applies.

pub mod codes;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::session::SignedIn;
use super::{AppError, AppState, capitalise, encode_query, render};
use crate::db::catalogue::ProductModel;
use crate::db::labels::{LabelUnit, LotChoice};
use crate::domain::labels::LabelData;
use crate::domain::{Gtin, SerialNumber};

/// Labels per screen page: five A4 sheets of 24 (3 × 8 labels of 70 × 37 mm).
pub const PER_PAGE: usize = 120;
/// Most serial numbers one request may choose (they travel in the query string).
pub const MAX_CHOSEN: usize = 500;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/labels", web::get().to(labels));
}

/// The print stylesheet, served beside the main one (`/static/labels.css`).
#[derive(Deserialize)]
pub struct LabelsQuery {
    lot: Option<String>,
    model: Option<String>,
    serials: Option<String>,
    page: Option<String>,
}

// ---- the chooser --------------------------------------------------------------------------

struct LotGroup {
    product: String,
    lots: Vec<(i64, String)>,
}

#[derive(Template)]
#[template(path = "admin/labels_form.html")]
struct ChooserPage {
    groups: Vec<LotGroup>,
    models: Vec<(i64, String)>,
    /// The model chosen in the serials form (0: none yet).
    model: i64,
    serials: String,
    serials_error: Option<String>,
    max_chosen: usize,
}

async fn chooser(
    state: &AppState,
    status: StatusCode,
    model: Option<i64>,
    serials: String,
    serials_error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let models = ProductModel::all(&mut conn)
        .await?
        .into_iter()
        .map(|m| (m.id, format!("{} {} · GTIN {}", m.brand, m.name, m.gtin)))
        .collect();
    let mut groups: Vec<LotGroup> = Vec::new();
    let mut last_model = None;
    for l in LotChoice::all(&mut conn).await? {
        let option = (l.lot_id, format!("{} (made {})", l.code, l.production_date));
        match groups.last_mut() {
            Some(g) if last_model == Some(l.model_id) => g.lots.push(option),
            _ => groups.push(LotGroup {
                product: format!("{} {} · GTIN {}", l.brand, l.name, l.gtin),
                lots: vec![option],
            }),
        }
        last_model = Some(l.model_id);
    }
    Ok(render(
        status,
        &ChooserPage {
            groups,
            models,
            model: model.unwrap_or(0),
            serials,
            serials_error,
            max_chosen: MAX_CHOSEN,
        },
    ))
}

// ---- the sheet ----------------------------------------------------------------------------

/// One printed label. `qr` and `datamatrix` are SVG built by [`codes`] (geometry only).
struct LabelView {
    serial: String,
    lot: Option<String>,
    expiry: Option<String>,
    qr: String,
    datamatrix: String,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/labels.html")]
struct SheetPage {
    heading: String,
    model_id: i64,
    product: String,
    model_number: String,
    gtin: String,
    total: usize,
    page: usize,
    pages: usize,
    prev: Option<String>,
    next: Option<String>,
    unknown: Vec<String>,
    invalid: Vec<(String, String)>,
    labels: Vec<LabelView>,
}

fn label_view(base: &str, gtin: Gtin, unit: &LabelUnit) -> LabelView {
    let mut view = LabelView {
        serial: unit.serial.clone(),
        lot: unit.lot.clone(),
        expiry: None,
        qr: String::new(),
        datamatrix: String::new(),
        problem: None,
    };
    let drawn = LabelData::new(gtin, &unit.serial, unit.lot.as_deref(), unit.expiry_date)
        .map_err(|e| e.to_string())
        .and_then(|data| {
            view.expiry = data.expiry_yymmdd();
            let link = format!("{base}{}", data.digital_link_path());
            let qr = codes::qr_svg(&link).map_err(|e| e.to_string())?;
            let dm =
                codes::gs1_datamatrix_svg(&data.element_string()).map_err(|e| e.to_string())?;
            Ok((qr, dm))
        });
    match drawn {
        Ok((qr, dm)) => {
            view.qr = qr;
            view.datamatrix = dm;
        }
        Err(e) => view.problem = Some(format!("No codes for this unit: {e}.")),
    }
    view
}

/// Draws the codes off the async threads: a page of 120 labels is 240 symbols.
async fn draw(base: String, gtin: Gtin, units: Vec<LabelUnit>) -> Result<Vec<LabelView>, AppError> {
    web::block(move || {
        units
            .iter()
            .map(|u| label_view(&base, gtin, u))
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("drawing label codes: {e}")))
}

fn page_count(total: usize) -> usize {
    total.div_ceil(PER_PAGE).max(1)
}

fn check_page(page: usize, pages: usize) -> Result<(), AppError> {
    if page > pages {
        return Err(AppError::not_found(
            "No such page of labels",
            format!("These labels fill {pages} page(s); there is no page {page}."),
        ));
    }
    Ok(())
}

async fn load_model(state: &AppState, id: i64) -> Result<ProductModel, AppError> {
    let mut conn = state.pool.get().await?;
    ProductModel::find(&mut conn, id).await?.ok_or_else(|| {
        AppError::not_found(
            "No such product model",
            "This product model does not exist. Choose one on the labels page.",
        )
    })
}

fn model_gtin(model: &ProductModel) -> Result<Gtin, AppError> {
    model.gtin().ok_or_else(|| {
        AppError::Internal(anyhow::anyhow!(
            "model {} has an invalid stored GTIN",
            model.id
        ))
    })
}

async fn lot_sheet(state: &AppState, lot_id: i64, page: usize) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let (lot, model) = LabelUnit::lot_with_model(&mut conn, lot_id)
        .await?
        .ok_or_else(|| {
            AppError::not_found(
                "No such lot",
                "This lot does not exist. Choose one on the labels page.",
            )
        })?;
    let total = usize::try_from(LabelUnit::count_in_lot(&mut conn, lot_id).await?).unwrap_or(0);
    let pages = page_count(total);
    check_page(page, pages)?;
    let offset = ((page - 1) * PER_PAGE) as i64;
    let units = LabelUnit::page_of_lot(&mut conn, lot_id, offset, PER_PAGE as i64).await?;
    drop(conn);
    let gtin = model_gtin(&model)?;
    let labels = draw(state.config.base_url(), gtin, units).await?;
    let link = |n: usize| format!("/admin/labels?lot={lot_id}&page={n}");
    Ok(render(
        StatusCode::OK,
        &SheetPage {
            heading: format!("lot {}", lot.code),
            model_id: model.id,
            product: format!("{} {}", model.brand, model.name),
            model_number: model.model_number,
            gtin: gtin.to_string(),
            total,
            page,
            pages,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            unknown: Vec::new(),
            invalid: Vec::new(),
            labels,
        },
    ))
}

/// Splits a pasted list of serials: newlines, commas, semicolons, tabs and spaces all separate.
/// (A comma is a valid CS82 character, but lists pasted from spreadsheets and mails use it as a
/// separator far more often than serials contain one.)
pub fn split_serials(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

async fn chosen_sheet(
    state: &AppState,
    model_id: i64,
    serials: String,
    page: usize,
) -> Result<HttpResponse, AppError> {
    let model = load_model(state, model_id).await?;
    let typed: Vec<&str> = split_serials(&serials).collect();
    if typed.is_empty() || typed.len() > MAX_CHOSEN {
        let error = if typed.is_empty() {
            "Enter at least one serial number.".to_owned()
        } else {
            format!(
                "Enter at most {MAX_CHOSEN} serial numbers at a time (this list has {}). For a whole lot, choose the lot instead.",
                typed.len()
            )
        };
        return chooser(
            state,
            StatusCode::BAD_REQUEST,
            Some(model_id),
            serials,
            Some(error),
        )
        .await;
    }
    // Each serial once, in the order typed, with the key it is matched on.
    let mut wanted: Vec<(String, &str)> = Vec::new();
    let mut invalid = Vec::new();
    for t in typed {
        match SerialNumber::parse_typed(t) {
            Ok(s) => {
                let key = if model.serials_case_sensitive {
                    s.as_str().to_owned()
                } else {
                    s.folded()
                };
                if !wanted.iter().any(|(k, _)| *k == key) {
                    wanted.push((key, t));
                }
            }
            Err(e) => invalid.push((t.to_owned(), capitalise(&e.to_string()))),
        }
    }
    let keys: Vec<String> = wanted.iter().map(|(k, _)| k.clone()).collect();
    let found = {
        let mut conn = state.pool.get().await?;
        LabelUnit::by_serial_keys(&mut conn, model.id, &keys).await?
    };
    let mut units = Vec::new();
    let mut unknown = Vec::new();
    for (key, t) in &wanted {
        match found.iter().find(|u| u.serial_key == *key) {
            Some(u) => units.push(u.clone()),
            None => unknown.push((*t).to_owned()),
        }
    }
    let total = units.len();
    let pages = page_count(total);
    check_page(page, pages)?;
    let units: Vec<LabelUnit> = units
        .into_iter()
        .skip((page - 1) * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    let gtin = model_gtin(&model)?;
    let labels = draw(state.config.base_url(), gtin, units).await?;
    let link = |n: usize| {
        format!(
            "/admin/labels?model={model_id}&serials={}&page={n}",
            encode_query(&serials)
        )
    };
    Ok(render(
        StatusCode::OK,
        &SheetPage {
            heading: format!("{total} chosen unit(s)"),
            model_id: model.id,
            product: format!("{} {}", model.brand, model.name),
            model_number: model.model_number,
            gtin: gtin.to_string(),
            total,
            page,
            pages,
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            unknown,
            invalid,
            labels,
        },
    ))
}

// ---- the one route ------------------------------------------------------------------------

fn parse_id(value: &str, what: &str) -> Result<i64, AppError> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            AppError::BadRequest(format!(
                "The {what} is given by its number (as in /admin/labels?{what}=12). Choose it on the labels page."
            ))
        })
}

fn parse_page(value: Option<&str>) -> Result<usize, AppError> {
    match value.map(str::trim) {
        None | Some("") => Ok(1),
        Some(p) => p.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            AppError::BadRequest("The page is a whole number from 1 (as in &page=2).".into())
        }),
    }
}

/// `?lot=ID` prints a lot, `?model=ID&serials=…` chosen units, `?model=ID` alone or nothing
/// shows the chooser.
async fn labels(
    _user: SignedIn,
    state: web::Data<AppState>,
    q: web::Query<LabelsQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    let page = parse_page(q.page.as_deref())?;
    match (q.lot, q.model, q.serials) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(AppError::BadRequest(
            "Choose either a lot or serial numbers of one model, not both.".into(),
        )),
        (Some(lot), None, None) => lot_sheet(&state, parse_id(&lot, "lot")?, page).await,
        (None, Some(model), Some(serials)) => {
            chosen_sheet(&state, parse_id(&model, "model")?, serials, page).await
        }
        (None, Some(model), None) => {
            let model = load_model(&state, parse_id(&model, "model")?).await?;
            chooser(&state, StatusCode::OK, Some(model.id), String::new(), None).await
        }
        (None, None, Some(_)) => Err(AppError::BadRequest(
            "Choose the product model the serial numbers belong to.".into(),
        )),
        (None, None, None) => chooser(&state, StatusCode::OK, None, String::new(), None).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_serial_lists_split_on_any_usual_separator() {
        let got: Vec<&str> =
            split_serials(" SN0001,SN0002\r\nSN0003;\tSN0004  SN0005,,\n").collect();
        assert_eq!(got, ["SN0001", "SN0002", "SN0003", "SN0004", "SN0005"]);
        assert_eq!(split_serials(" ,\n ").count(), 0);
    }

    #[test]
    fn labels_pages_hold_120_and_there_is_always_one() {
        assert_eq!(page_count(0), 1);
        assert_eq!(page_count(120), 1);
        assert_eq!(page_count(121), 2);
        assert!(check_page(2, 1).is_err() && check_page(1, 1).is_ok());
        assert!(parse_page(Some("0")).is_err() && parse_page(Some("x")).is_err());
        assert_eq!(parse_page(None).ok(), Some(1));
        assert!(parse_id("-3", "lot").is_err() && parse_id(" 7 ", "lot").is_ok());
    }
}
