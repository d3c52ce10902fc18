//! Model pictures: admins upload one per model (PNG, JPEG or WebP, type judged by content, at
//! most 2 MB); anyone may fetch it, since the public model page and recall notices show it.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::imports::{small_text, unreadable};
use super::session::{CsrfForm, SignedIn, check_csrf};
use super::{AppError, AppState, see_other};
use crate::domain::picture::{MAX_PICTURE_BYTES, check};

pub fn admin_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/models/{id}/picture", web::post().to(upload))
        .route("/models/{id}/picture/remove", web::post().to(remove));
}

fn back(model_id: i64, query: &str) -> HttpResponse {
    see_other(&format!("/admin/models/{model_id}?{query}#picture-title"))
}

async fn model_exists(state: &AppState, id: i64) -> Result<(), AppError> {
    if state.catalogue().iter().any(|m| m.id == id) {
        return Ok(());
    }
    let mut conn = state.pool.get().await?;
    crate::db::catalogue::ProductModel::find(&mut conn, id)
        .await?
        .map(|_| ())
        .ok_or_else(|| {
            AppError::not_found(
                "No such model",
                "There is no product model with this number.",
            )
        })
}

async fn upload(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    mut form: Multipart,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let mut token = String::new();
    let mut picture: Option<Result<Vec<u8>, ()>> = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|_| unreadable())?;
        match field.name() {
            Some("csrf_token") => token = small_text(&mut field).await?,
            Some("picture") if picture.is_none() => {
                check_csrf(&req, &token).await?;
                picture = Some(match field.bytes(MAX_PICTURE_BYTES + 1).await {
                    Ok(Ok(b)) => Ok(b.to_vec()),
                    Ok(Err(_)) => return Err(unreadable()),
                    Err(_) => Err(()),
                });
            }
            _ => {
                while let Some(chunk) = field.next().await {
                    chunk.map_err(|_| unreadable())?;
                }
            }
        }
    }
    check_csrf(&req, &token).await?;
    model_exists(&state, id).await?;
    let bytes = match picture {
        Some(Ok(b)) => b,
        Some(Err(())) => vec![0; MAX_PICTURE_BYTES + 1],
        None => Vec::new(),
    };
    let content_type = match check(&bytes) {
        Ok(t) => t,
        Err(e) => {
            return Ok(back(
                id,
                &format!(
                    "picture_error={}",
                    super::encode_query(&super::capitalise(&e))
                ),
            ));
        }
    };
    let mut conn = state.pool.get().await?;
    crate::db::pictures::save(&mut conn, id, content_type, &bytes).await?;
    drop(conn);
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "model_picture_changed",
        &format!("model {id}: {content_type}, {} bytes", bytes.len()),
    )
    .await?;
    Ok(back(id, "notice=picture-saved"))
}

#[derive(serde::Deserialize)]
pub struct Empty {}

async fn remove(
    req: HttpRequest,
    user: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    _form: CsrfForm<Empty>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    model_exists(&state, id).await?;
    let mut conn = state.pool.get().await?;
    crate::db::pictures::remove(&mut conn, id).await?;
    drop(conn);
    super::catalogue::audit(
        &req,
        &state,
        user.account.id,
        "model_picture_changed",
        &format!("model {id}: picture removed"),
    )
    .await?;
    Ok(back(id, "notice=picture-removed"))
}

/// `GET /models/{id}/picture`: the picture with the type it was judged to be.
pub async fn serve(
    state: web::Data<AppState>,
    path: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mut conn = state.pool.get().await?;
    let (content_type, bytes, _) = crate::db::pictures::find(&mut conn, path.into_inner())
        .await?
        .ok_or_else(|| AppError::not_found("No picture", "This product model has no picture."))?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::CONTENT_DISPOSITION, "inline"))
        .body(bytes))
}
