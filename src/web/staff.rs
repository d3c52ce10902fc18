//! The service desk (`/staff`), for staff and admins. Guarded in `web::configure`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::render;
use super::session::SignedIn;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(home))
        .route("/", web::get().to(home));
}

#[derive(Template)]
#[template(path = "staff/home.html")]
struct StaffHome {
    email: String,
    role: String,
    csrf_token: String,
}

async fn home(user: SignedIn) -> HttpResponse {
    render(
        StatusCode::OK,
        &StaffHome {
            email: user.account.email.clone(),
            role: user.account.role.clone(),
            csrf_token: user.session.csrf_token.clone(),
        },
    )
}
