//! Forms with a file (`multipart/form-data`), read by hand: the CSRF token is the form's first
//! field and is checked before a byte of any file is kept; the text fields then deserialise into
//! the same structs an ordinary form uses.
//!
//! The app's body limit does not apply to a multipart stream, so this module sets its own: the
//! request is refused before reading when it says it is too large, cut off when it turns out to
//! be, given a deadline, and only so many megabytes of them are read at once (each holds its
//! files in memory).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::LazyLock;
use std::time::Duration;

use actix_multipart::Multipart;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, web};

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::AppError;
use super::imports::unreadable;
use super::session::{Session, check_csrf, check_origin};

/// Longest text field accepted, in bytes (longer is a 400: no form of ours sends that much).
const MAX_TEXT_BYTES: usize = 16 * 1024;
/// At most this many text fields.
const MAX_TEXT_FIELDS: usize = 50;
/// Room for the text fields and the multipart framing beside the files.
const FORM_OVERHEAD: usize = 64 * 1024;
/// A form must arrive within this time (a phone on a slow network sends 5 MB in well under it).
const READ_DEADLINE: Duration = Duration::from_secs(120);
/// How long a form waits for room before the answer is "busy, try again".
const RESERVE_WAIT: Duration = Duration::from_secs(10);
/// Memory for forms with files being read at the same time, per process, in MiB: each form
/// holds as many as it may carry (a proof form 6, a claim with five photos 26).
const READ_BUDGET_MIB: u32 = 48;

static READS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(READ_BUDGET_MIB as usize));

/// A file sent with the form.
pub struct FilePart {
    /// The form field's name.
    pub field: String,
    /// Its content, unless it was larger than the limit (then empty and `too_large` is set).
    pub bytes: Bytes,
    pub too_large: bool,
}

/// A posted form with files, from our own origin with the session's CSRF token.
pub struct CsrfMultipart<T> {
    pub session: Session,
    pub form: T,
    pub files: Vec<FilePart>,
    /// More files were sent than the form takes (those were dropped unread).
    pub too_many_files: bool,
}

impl<T: DeserializeOwned> CsrfMultipart<T> {
    /// Reads the form. Files larger than `file_limit` are read to their end and marked, not
    /// kept; files beyond `max_files` are dropped; a file input left empty is skipped. A body
    /// larger than the files and the fields can be is refused with a 413.
    pub async fn read(
        req: &HttpRequest,
        payload: web::Payload,
        file_limit: usize,
        max_files: usize,
    ) -> Result<Self, AppError> {
        // Refused before a byte of the body is read: another site's form, no session at all.
        check_origin(req)?;
        if Session::load(req).await?.is_none() {
            return Err(check_csrf(req, "").await.err().unwrap_or_else(unreadable));
        }
        let limit = file_limit
            .saturating_mul(max_files)
            .saturating_add(FORM_OVERHEAD);
        let declared = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(AppError::PayloadTooLarge);
        }
        // Reserve what this body says it is (or the most it may be, when it does not say), and
        // give up with a 503 rather than wait long for room.
        let expected = declared.map_or(limit, |n| usize::try_from(n).unwrap_or(limit).min(limit));
        let mib = u32::try_from(expected.div_ceil(1 << 20))
            .unwrap_or(u32::MAX)
            .clamp(1, READ_BUDGET_MIB);
        let _permit = match tokio::time::timeout(RESERVE_WAIT, READS.acquire_many(mib)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Err(AppError::Internal(e.into())),
            Err(_) => return Err(AppError::Busy),
        };
        let overflow = Rc::new(Cell::new(false));
        let flag = Rc::clone(&overflow);
        let mut seen = 0usize;
        // A body that said it was smaller than it is stops at what was reserved for it.
        let cap = if declared.is_some() { expected } else { limit };
        let limited = payload.map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len();
            if seen > cap {
                flag.set(true);
                return Err(PayloadError::Overflow);
            }
            Ok(chunk)
        });
        let body = Multipart::new(req.headers(), limited);
        match tokio::time::timeout(READ_DEADLINE, read_all(req, body, file_limit, max_files)).await
        {
            Ok(Ok(form)) => Ok(form),
            Ok(Err(_)) if overflow.get() => Err(AppError::PayloadTooLarge),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(AppError::BadRequest(
                "The form took too long to arrive. Try again, on a faster connection if you can."
                    .into(),
            )),
        }
    }
}

async fn read_all<T: DeserializeOwned>(
    req: &HttpRequest,
    mut body: Multipart,
    file_limit: usize,
    max_files: usize,
) -> Result<CsrfMultipart<T>, AppError> {
    let mut text: Vec<(String, String)> = Vec::new();
    let mut files = Vec::new();
    let mut session: Option<Session> = None;
    let mut sent_token = String::new();
    let mut too_many_files = false;
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
            too_many_files = true;
            while let Some(chunk) = field.next().await {
                chunk.map_err(|_| unreadable())?;
            }
            continue;
        }
        match field.bytes(file_limit).await {
            Ok(Ok(b)) if b.is_empty() => {}
            Ok(Ok(b)) => files.push(FilePart {
                field: name,
                bytes: b,
                too_large: false,
            }),
            Ok(Err(_)) => return Err(unreadable()),
            // `bytes` has read the rest of the field already, keeping none of it.
            Err(_) => files.push(FilePart {
                field: name,
                bytes: Bytes::new(),
                too_large: true,
            }),
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
        too_many_files,
    })
}
