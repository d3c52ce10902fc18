//! Forms with a file (`multipart/form-data`), read by hand: the CSRF token is the form's first
//! field and is checked before a byte of any file is kept; the text fields then deserialise into
//! the same structs an ordinary form uses.

use actix_multipart::Multipart;
use actix_web::HttpRequest;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::AppError;
use super::imports::unreadable;
use super::session::{Session, check_csrf};

/// Longest text field accepted, in bytes (longer is a 400: no form of ours sends that much).
const MAX_TEXT_BYTES: usize = 16 * 1024;
/// At most this many text fields.
const MAX_TEXT_FIELDS: usize = 50;

/// A file sent with the form.
pub struct FilePart {
    /// The form field's name.
    pub field: String,
    /// Its content, unless it was larger than the limit (then empty and `too_large` is set).
    pub bytes: Vec<u8>,
    pub too_large: bool,
}

/// A posted form with files, from our own origin with the session's CSRF token.
pub struct CsrfMultipart<T> {
    pub session: Session,
    pub form: T,
    pub files: Vec<FilePart>,
}

impl<T: DeserializeOwned> CsrfMultipart<T> {
    /// Reads the form. Files larger than `file_limit` are drained and marked, not kept; files
    /// beyond `max_files` are drained and dropped; a file field with nothing chosen is skipped.
    pub async fn read(
        req: &HttpRequest,
        mut body: Multipart,
        file_limit: usize,
        max_files: usize,
    ) -> Result<Self, AppError> {
        let mut text: Vec<(String, String)> = Vec::new();
        let mut files = Vec::new();
        let mut session: Option<Session> = None;
        let mut sent_token = String::new();
        while let Some(field) = body.next().await {
            let mut field = field.map_err(|_| unreadable())?;
            let name = field.name().unwrap_or("").to_owned();
            let is_file = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .is_some();
            if !is_file {
                if text.len() >= MAX_TEXT_FIELDS {
                    return Err(AppError::BadRequest("The form has too many fields.".into()));
                }
                let bytes = field
                    .bytes(MAX_TEXT_BYTES)
                    .await
                    .map_err(|_| AppError::BadRequest("A form field is too long.".into()))?
                    .map_err(|_| unreadable())?;
                let value = String::from_utf8(bytes.to_vec()).map_err(|_| unreadable())?;
                if name == "csrf_token" {
                    sent_token = value.clone();
                }
                text.push((name, value));
                continue;
            }
            // Nothing of a file is kept before the token has been checked.
            if session.is_none() {
                session = Some(check_csrf(req, &sent_token).await?);
            }
            if files.len() >= max_files {
                drain(&mut field).await?;
                continue;
            }
            match field.bytes(file_limit).await {
                Ok(Ok(b)) if b.is_empty() => {}
                Ok(Ok(b)) => files.push(FilePart {
                    field: name,
                    bytes: b.to_vec(),
                    too_large: false,
                }),
                Ok(Err(_)) => return Err(unreadable()),
                // `bytes` has read the rest of the field already, keeping none of it.
                Err(_) => {
                    files.push(FilePart {
                        field: name,
                        bytes: Vec::new(),
                        too_large: true,
                    });
                }
            }
        }
        let session = match session {
            Some(s) => s,
            None => check_csrf(req, &sent_token).await?,
        };
        let encoded = serde_urlencoded::to_string(&text).map_err(|_| unreadable())?;
        let form = serde_urlencoded::from_str(&encoded)
            .map_err(|_| AppError::BadRequest("The form was incomplete or malformed.".into()))?;
        Ok(CsrfMultipart {
            session,
            form,
            files,
        })
    }
}

async fn drain(field: &mut actix_multipart::Field) -> Result<(), AppError> {
    while let Some(chunk) = field.next().await {
        chunk.map_err(|_| unreadable())?;
    }
    Ok(())
}
