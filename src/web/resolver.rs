//! The GS1 Digital Link resolver: `GET`, `HEAD` and `OPTIONS` on
//! `/01/{gtin}[/10/{lot}][/21/{serial}]`, to the GS1-Conformant resolver rules. No `linkType`:
//! a unit's link redirects (307) to its lookup result, a lot's to the model page, and the
//! model's link is the model page. A named `linkType` redirects to that page; `linkType=all`, or
//! an `Accept` that prefers JSON, gets the linkset (RFC 9264). Every answer allows scripts on
//! other sites to read it (CORS), and names its linkset in a `Link` header.
//!
//! Nothing here says anything about a unit's owner, or even whether a serial exists: the pages
//! it points at do the lookup, and count against the lookup limit there. Redirects and linksets
//! cost no database query and are not counted (unless the product is missing from the catalogue
//! this process holds: then its one query counts); the model page counts.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::{Map, Value, json};

use super::api::ApiError;
use super::error::ErrorPage;
use super::{AppError, AppState, encode_query};
use crate::db::catalogue::ProductModel;
use crate::domain::Gtin;
use crate::domain::digital_link::{DigitalLink, ItemLevel, LinkRequest, LinkType};

/// The media type of a linkset in JSON (RFC 9264 §4.2).
pub const LINKSET_TYPE: &str = "application/linkset+json";
/// The JSON-LD context GS1 publishes for resolver linksets (GS1-Conformant Resolver
/// artefacts), named in a `Link` header so a client can read the linkset as JSON-LD.
const LINKSET_CONTEXT: &str = "https://ref.gs1.org/standards/resolver/linkset-context";
const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";
/// The language of every page the links lead to.
const PAGE_LANGUAGE: &str = "en";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/01/{tail:.*}")
            .route(web::get().to(resolve))
            // actix sends the headers of a HEAD answer and leaves the body out.
            .route(web::head().to(resolve))
            .route(web::method(Method::OPTIONS).to(options))
            .default_service(web::to(method_not_allowed)),
    );
}

/// Where a link type of this link leads: a path in the portal (with a query or fragment).
pub fn target(link: &DigitalLink, link_type: LinkType) -> String {
    let gtin = link.gtin.as_string();
    let model_page = format!("/01/{gtin}");
    match (link_type, &link.serial) {
        (LinkType::DefaultLink, _) => target(link, default_link_type(link)),
        (LinkType::Pip, _) => model_page,
        // The lookup result says both the recall and the warranty status of the unit.
        (LinkType::RecallStatus, Some(serial)) => {
            let mut location = format!(
                "/check?serial={}&gtin={gtin}",
                encode_query(serial.as_str())
            );
            if let Some(lot) = &link.lot {
                location.push_str(&format!("&lot={}", encode_query(lot)));
            }
            location
        }
        // A lot or a model: the model's page lists the recalls in force for it.
        (LinkType::RecallStatus, None) => format!("/01/{gtin}#recalls"),
        // The registration form, with what the code says already filled in.
        (LinkType::RegisterProduct, Some(serial)) => format!(
            "/register?gtin={gtin}&serial={}",
            encode_query(serial.as_str())
        ),
        (LinkType::RegisterProduct, None) => format!("/register?gtin={gtin}"),
        // Claims are filed on a registered product from "My products" (after signing in):
        // naming the registration here would tell a stranger that someone owns the unit.
        (LinkType::Support, _) => "/account/products".to_owned(),
        (LinkType::ServiceInfo, _) => format!("{model_page}#warranty"),
    }
}

/// What the link answers without a `linkType`: the lookup result for a unit, the model page
/// for a lot or a model.
pub fn default_link_type(link: &DigitalLink) -> LinkType {
    match link.level() {
        ItemLevel::Unit => LinkType::RecallStatus,
        ItemLevel::Lot | ItemLevel::Model => LinkType::Pip,
    }
}

fn title(link: &DigitalLink, link_type: LinkType, item: &str) -> String {
    match (link_type, &link.serial) {
        (LinkType::DefaultLink, _) => title(link, default_link_type(link), item),
        (LinkType::Pip, _) => format!("Product information: {item}"),
        (LinkType::RecallStatus, Some(serial)) => format!(
            "Recall and warranty status of serial number {}",
            serial.as_str()
        ),
        (LinkType::RecallStatus, None) => format!("Product safety recalls for {item}"),
        (LinkType::RegisterProduct, _) => {
            "Register this product to be told directly about recalls".to_owned()
        }
        (LinkType::Support, _) => {
            "Warranty claims and repairs for your registered products (sign-in needed)".to_owned()
        }
        (LinkType::ServiceInfo, _) => {
            format!("Warranty terms of the {item}, and where to find the serial number")
        }
    }
}

/// The linkset of a link (RFC 9264, as the GS1-Conformant resolver standard shapes it): the
/// canonical Digital Link as the anchor, one absolute link per link type. `base` is the portal's
/// public address, `item` what the product is called.
pub fn linkset(base: &str, link: &DigitalLink, item: &str) -> Value {
    let mut entry = Map::new();
    entry.insert(
        "anchor".into(),
        json!(format!("{base}{}", link.canonical_path())),
    );
    entry.insert("description".into(), json!(item));
    for t in LinkType::ALL {
        entry.insert(
            t.uri(),
            json!([{
                "href": format!("{base}{}", target(link, t)),
                "title": title(link, t, item),
                "type": "text/html",
                "hreflang": [PAGE_LANGUAGE],
            }]),
        );
    }
    json!({ "linkset": [Value::Object(entry)] })
}

/// The `Link` header value that points at a link's linkset.
pub fn linkset_link_header(base: &str, link: &DigitalLink) -> String {
    format!(
        "<{base}{}?linkType=all>; rel=\"linkset\"; type=\"{LINKSET_TYPE}\"",
        link.canonical_path()
    )
}

/// Whether an `Accept` header prefers JSON (the linkset) to HTML: a JSON type
/// (`application/linkset+json`, `application/json`) with a higher quality than any HTML type.
/// Wildcards count for neither, so `*/*` and a browser's `Accept` keep the redirect.
pub fn prefers_json(accept: &str) -> bool {
    let (mut json, mut html) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f32>().ok())?
            })
            .next()
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        match media.as_str() {
            "application/linkset+json" | "application/json" => json = json.max(q),
            "text/html" | "application/xhtml+xml" => html = html.max(q),
            _ => {}
        }
    }
    json > 0.0 && json > html
}

/// Whether a raw query asks for the linkset (then errors are answered in JSON too).
fn query_asks_for_linkset(query: &str) -> bool {
    query
        .split('&')
        .any(|p| p == "linkType=all" || p == "linkType=linkset")
}

/// Whether this request wants its answer, error or not, as JSON.
fn wants_json(req: &HttpRequest) -> bool {
    let accept = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    prefers_json(&accept) || query_asks_for_linkset(req.uri().query().unwrap_or(""))
}

/// Why a link could not be answered.
enum ResolveError {
    InvalidLink(String),
    UnknownLinkType(String),
    UnknownProduct(Gtin),
    MethodNotAllowed,
    App(AppError),
}

impl From<AppError> for ResolveError {
    fn from(e: AppError) -> Self {
        ResolveError::App(e)
    }
}

impl From<diesel::result::Error> for ResolveError {
    fn from(e: diesel::result::Error) -> Self {
        ResolveError::App(e.into())
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>>
    for ResolveError
{
    fn from(e: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>) -> Self {
        ResolveError::App(e.into())
    }
}

impl ResolveError {
    /// The error as the page everyone else gets.
    fn html(self) -> HttpResponse {
        match self {
            ResolveError::InvalidLink(m) => AppError::BadRequest(m).error_response(),
            ResolveError::UnknownLinkType(m) => {
                AppError::not_found("Link type not available", m).error_response()
            }
            ResolveError::UnknownProduct(gtin) => {
                AppError::not_found("Product not found", no_product(&gtin)).error_response()
            }
            ResolveError::MethodNotAllowed => ErrorPage::response(
                StatusCode::METHOD_NOT_ALLOWED,
                "Not allowed",
                "A product link can only be opened (GET, HEAD or OPTIONS).",
            ),
            ResolveError::App(e) => e.error_response(),
        }
    }

    /// The error as every answer under `/api` gives it: `{"error": {"code", "message"}}`, with
    /// its status and headers (such as Retry-After).
    fn json(self) -> HttpResponse {
        let e = match self {
            ResolveError::InvalidLink(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_link", m)
            }
            ResolveError::UnknownLinkType(m) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_link_type", m)
            }
            ResolveError::UnknownProduct(g) => {
                ApiError::new(StatusCode::NOT_FOUND, "product_not_found", no_product(&g))
            }
            ResolveError::MethodNotAllowed => ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "A product link answers GET, HEAD and OPTIONS only.",
            ),
            ResolveError::App(e) => ApiError::from(e),
        };
        e.error_response()
    }
}

fn no_product(gtin: &Gtin) -> String {
    format!(
        "We have no product with GTIN {gtin} in our catalogue. Check the number under the barcode."
    )
}

/// The headers every answer of the resolver carries: anyone's scripts may read it, and it
/// differs by `Accept`, which caches must know.
fn add_common_headers(res: &mut HttpResponse) {
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Link"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
}

async fn resolve(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let json = wants_json(&req);
    let mut res = match answer(&req, &state, json).await {
        Ok(res) => res,
        Err(e) if json => e.json(),
        Err(e) => e.html(),
    };
    add_common_headers(&mut res);
    res
}

async fn answer(
    req: &HttpRequest,
    state: &AppState,
    json: bool,
) -> Result<HttpResponse, ResolveError> {
    let link = DigitalLink::from_parts(req.uri().path(), req.uri().query())
        .map_err(|e| ResolveError::InvalidLink(format!("This product link is not valid: {e}.")))?;
    let request = LinkRequest::parse(link.link_type.as_deref()).map_err(|e| {
        let offered: Vec<String> = LinkType::ALL.iter().map(|t| t.curie()).collect();
        ResolveError::UnknownLinkType(format!(
            "{}. It offers {}, or linkType=all for the list of links.",
            super::capitalise(&e.to_string()),
            offered.join(", ")
        ))
    })?;
    let base = state.config.base_url();
    let request = match request {
        LinkRequest::Default if json => LinkRequest::LinkSet,
        other => other,
    };
    if request == LinkRequest::LinkSet {
        let item = item_description(req, state, &link.gtin).await?;
        let body = linkset(&base, &link, &item).to_string();
        return Ok(HttpResponse::Ok()
            .content_type(LINKSET_TYPE)
            .insert_header((
                header::LINK,
                format!("<{LINKSET_CONTEXT}>; rel=\"http://www.w3.org/ns/json-ld#context\""),
            ))
            .body(body));
    }
    let mut res = match request {
        // The model's own link is the model page, not a redirect to it.
        LinkRequest::Default if link.level() == ItemLevel::Model => {
            state.limiter.check(req)?;
            super::public::model_page(state, &link.gtin).await?
        }
        LinkRequest::One(t) => redirect(&target(&link, t)),
        _ => redirect(&target(&link, LinkType::DefaultLink)),
    };
    if let Ok(v) = HeaderValue::from_str(&linkset_link_header(&base, &link)) {
        res.headers_mut().insert(header::LINK, v);
    }
    Ok(res)
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::TemporaryRedirect()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

/// The product's brand and name. From the catalogue each process holds (no query, not
/// counted); a model added since it was last loaded costs one counted query.
async fn item_description(
    req: &HttpRequest,
    state: &AppState,
    gtin: &Gtin,
) -> Result<String, ResolveError> {
    let describe = |m: &ProductModel| format!("{} {}", m.brand, m.name);
    let wanted = gtin.as_string();
    if let Some(m) = state.catalogue().iter().find(|m| m.gtin == wanted) {
        return Ok(describe(m));
    }
    state.limiter.check(req)?;
    let mut conn = state.pool.get().await?;
    ProductModel::find_by_gtin(&mut conn, gtin)
        .await?
        .map(|m| describe(&m))
        .ok_or_else(|| ResolveError::UnknownProduct(*gtin))
}

/// `OPTIONS`: which methods a product link answers, and the CORS preflight answer.
async fn options() -> HttpResponse {
    let mut res = HttpResponse::NoContent()
        .insert_header((header::ALLOW, ALLOWED_METHODS))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Accept, Accept-Language",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish();
    add_common_headers(&mut res);
    res
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let e = ResolveError::MethodNotAllowed;
    let mut res = if wants_json(&req) { e.json() } else { e.html() };
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    add_common_headers(&mut res);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://portal.example";

    fn link(s: &str) -> DigitalLink {
        DigitalLink::parse(s).unwrap()
    }

    #[test]
    fn every_link_type_leads_to_a_page_for_each_level() {
        let unit = link("/01/9506000134352/10/ABC123/21/SN%2F1?17=261231");
        let lot = link("/01/09506000134352/10/ABC123");
        let model = link("/01/09506000134352");
        let g = "09506000134352";
        let cases: &[(&DigitalLink, LinkType, String)] = &[
            (
                &unit,
                LinkType::RecallStatus,
                format!("/check?serial=SN%2F1&gtin={g}&lot=ABC123"),
            ),
            (
                &unit,
                LinkType::DefaultLink,
                format!("/check?serial=SN%2F1&gtin={g}&lot=ABC123"),
            ),
            (
                &unit,
                LinkType::RegisterProduct,
                format!("/register?gtin={g}&serial=SN%2F1"),
            ),
            (&unit, LinkType::Pip, format!("/01/{g}")),
            (&unit, LinkType::Support, "/account/products".into()),
            (&unit, LinkType::ServiceInfo, format!("/01/{g}#warranty")),
            (&lot, LinkType::DefaultLink, format!("/01/{g}")),
            (&lot, LinkType::RecallStatus, format!("/01/{g}#recalls")),
            (
                &lot,
                LinkType::RegisterProduct,
                format!("/register?gtin={g}"),
            ),
            (&model, LinkType::DefaultLink, format!("/01/{g}")),
            (&model, LinkType::RecallStatus, format!("/01/{g}#recalls")),
            (&model, LinkType::ServiceInfo, format!("/01/{g}#warranty")),
        ];
        for (l, t, want) in cases {
            assert_eq!(&target(l, *t), want, "{:?} {t:?}", l.level());
        }
        // A unit without a lot has no lot in its lookup address.
        let bare = link("/01/09506000134352/21/SN0001");
        assert_eq!(
            target(&bare, LinkType::RecallStatus),
            format!("/check?serial=SN0001&gtin={g}")
        );
    }

    #[test]
    fn the_linkset_has_the_canonical_anchor_and_one_absolute_link_per_type() {
        let unit = link("https://elsewhere.example/01/9506000134352/10/ABC123/21/A%2FB?17=261231");
        let set = linkset(BASE, &unit, "Arden Tools PowerCell");
        let entries = set["linkset"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(
            e["anchor"],
            "https://portal.example/01/09506000134352/10/ABC123/21/A%2FB"
        );
        assert_eq!(e["description"], "Arden Tools PowerCell");
        for t in LinkType::ALL {
            let links = e[t.uri()].as_array().unwrap_or_else(|| panic!("{t:?}"));
            assert_eq!(links.len(), 1);
            let l = &links[0];
            assert_eq!(l["href"], format!("{BASE}{}", target(&unit, t)));
            assert_eq!(l["type"], "text/html");
            assert_eq!(l["hreflang"], json!(["en"]));
            assert!(!l["title"].as_str().unwrap().is_empty());
        }
        assert_eq!(
            e["https://gs1.org/voc/recallStatus"][0]["href"],
            format!("{BASE}/check?serial=A%2FB&gtin=09506000134352&lot=ABC123")
        );
        assert_eq!(
            e["https://gs1.org/voc/pip"][0]["title"],
            "Product information: Arden Tools PowerCell"
        );
        // Only the anchor, the description and the six link types.
        assert_eq!(e.as_object().unwrap().len(), 2 + LinkType::ALL.len());

        let model = link("/01/09506000134352");
        let set = linkset(BASE, &model, "X");
        assert_eq!(
            set["linkset"][0]["anchor"],
            format!("{BASE}/01/09506000134352")
        );
        assert_eq!(
            set["linkset"][0]["https://gs1.org/voc/defaultLink"][0]["href"],
            format!("{BASE}/01/09506000134352")
        );
    }

    #[test]
    fn the_link_header_names_the_linkset_of_the_canonical_link() {
        let l = link("/01/9506000134352/21/SN0001?linkType=gs1:pip&17=261231");
        assert_eq!(
            linkset_link_header(BASE, &l),
            "<https://portal.example/01/09506000134352/21/SN0001?linkType=all>; rel=\"linkset\"; type=\"application/linkset+json\""
        );
    }

    #[test]
    fn only_a_preference_for_json_gets_the_linkset() {
        for accept in [
            "application/linkset+json",
            "application/json",
            "Application/JSON",
            "application/json, text/html;q=0.5",
            "text/html;q=0.8, application/linkset+json",
            "application/json;Q=0.9, */*;q=1",
        ] {
            assert!(prefers_json(accept), "{accept}");
        }
        for accept in [
            "",
            "*/*",
            "text/html",
            // A browser's.
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
            "application/json, text/html",
            "application/json;q=0",
            "application/json;q=0.5, text/html",
            "application/*",
            "application/jsonx",
        ] {
            assert!(!prefers_json(accept), "{accept}");
        }
    }

    #[test]
    fn a_linkset_query_is_recognised() {
        assert!(query_asks_for_linkset("17=261231&linkType=all"));
        assert!(query_asks_for_linkset("linkType=linkset"));
        assert!(!query_asks_for_linkset("linkType=gs1:pip"));
        assert!(!query_asks_for_linkset("xlinkType=all"));
    }
}
