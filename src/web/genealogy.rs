//! Genealogy on a unit's page (admins): install a component unit or lot by scanning or typing
//! it, and remove one with a reason. Files of components go through the import.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::session::{CsrfForm, SignedIn};
use super::{AppError, AppState, see_other};
use crate::db::genealogy::ComponentLink;
use crate::db::lookup::UnitMatch;
use crate::domain::genealogy::ComponentRef;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/units/{id}/components", web::post().to(install))
        .route(
            "/units/{id}/components/{link}/remove",
            web::post().to(remove),
        );
}

#[derive(Deserialize)]
pub struct InstallForm {
    #[serde(default)]
    component: String,
}

fn back(unit_id: i64, key: &str, message: &str) -> HttpResponse {
    see_other(&format!(
        "/staff/units/{unit_id}?{key}={}#genealogy-title",
        super::encode_query(message)
    ))
}

/// What the scanned or typed text names, as a unit id or a lot id.
async fn resolve(
    state: &AppState,
    text: &str,
) -> Result<Result<(Option<i64>, Option<i64>), String>, AppError> {
    let r = match ComponentRef::parse(text) {
        Ok(r) => r,
        Err(e) => return Ok(Err(super::capitalise(&e))),
    };
    let mut conn = state.pool.get().await?;
    match r {
        ComponentRef::Unit(q) => {
            let gtin = q.gtin.map(|g| g.as_string());
            let found =
                UnitMatch::find(&conn, &state.catalogue(), &q.serial, gtin.as_deref()).await?;
            Ok(match found.as_slice() {
                [] => Err(format!("There is no unit {}.", q.serial.as_str())),
                [one] => Ok((Some(one.unit.id), None)),
                many => Err(format!(
                    "{} exists on {} models: scan the code with the GTIN.",
                    q.serial.as_str(),
                    many.len()
                )),
            })
        }
        ComponentRef::Lot { gtin, lot } => {
            let gtin = gtin.as_string();
            let Some(model) = state.catalogue().iter().find(|m| m.gtin == gtin).cloned() else {
                return Ok(Err(format!("No product model has GTIN {gtin}.")));
            };
            let lots = crate::db::catalogue::Lot::for_model(&mut conn, model.id).await?;
            Ok(match lots.iter().find(|l| l.code == lot) {
                Some(l) => Ok((None, Some(l.id))),
                None => Err(format!("{} has no lot {lot}.", model.name)),
            })
        }
    }
}

async fn install(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: CsrfForm<InstallForm>,
) -> Result<HttpResponse, AppError> {
    let parent_id = path.into_inner();
    {
        let mut conn = state.pool.get().await?;
        if !crate::db::lookup::unit_exists(&mut conn, parent_id).await? {
            return Err(AppError::not_found(
                "No such unit",
                "There is no unit with this number.",
            ));
        }
    }
    let text = form.form.component.trim();
    if text.is_empty() {
        return Ok(back(
            parent_id,
            "component_error",
            "Scan or type the component's code, serial or lot.",
        ));
    }
    let (unit_id, lot_id) = match resolve(&state, text).await? {
        Ok(ids) => ids,
        Err(e) => return Ok(back(parent_id, "component_error", &e)),
    };
    let actor = format!("admin:{}", user.account.email);
    let mut client = state.bulk_client().await?;
    let outcome = crate::db::genealogy::install(
        &mut client,
        &[ComponentLink {
            line: 1,
            parent_id,
            unit_id,
            lot_id,
        }],
        &actor,
    )
    .await?;
    if let Some(e) = outcome.errors.first() {
        return Ok(back(
            parent_id,
            "component_error",
            &super::capitalise(&e.reason),
        ));
    }
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "component_installed",
        &format!("unit {parent_id}: {text}"),
    )
    .await?;
    Ok(back(parent_id, "notice", "installed"))
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    reason: String,
}

async fn remove(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    form: CsrfForm<RemoveForm>,
) -> Result<HttpResponse, AppError> {
    let (parent_id, link_id) = path.into_inner();
    let reason = match crate::domain::sales::unlink_reason(&form.form.reason) {
        Ok(r) => r,
        Err(_) => {
            return Ok(back(
                parent_id,
                "component_error",
                "Say why the component is removed (e.g. replaced in repair), in at most 200 characters.",
            ));
        }
    };
    let actor = format!("admin:{}", user.account.email);
    let mut conn = state.pool.get().await?;
    if !crate::db::genealogy::remove(&mut conn, parent_id, link_id, &reason, &actor).await? {
        return Err(AppError::Conflict(
            "This component is not installed in this unit (any more). Reload the unit's page."
                .into(),
        ));
    }
    drop(conn);
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "component_removed",
        &format!("unit {parent_id}, link {link_id}: {reason}"),
    )
    .await?;
    Ok(back(parent_id, "notice", "removed"))
}
