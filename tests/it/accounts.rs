//! Accounts, sessions, CSRF, roles and the mail outbox, through real HTTP and a real SMTP
//! server on loopback.

use crate::helpers::{TestApp, app_with_mail, csrf_of, q, spawn_app, spawn_app_with};
use crate::smtp::{SmtpServer, link_in};

const PW: &str = "Tangerine-Quartz-Velvet-94";

/// The session cookie a cookie-keeping client currently sends.
async fn current_session(app: &TestApp, client: &reqwest::Client) -> String {
    // Any page that loads the session echoes nothing, so read it from a fresh form page.
    let r = client
        .get(format!("{}/login", app.address))
        .send()
        .await
        .unwrap();
    crate::helpers::session_cookie(&r).unwrap_or_default()
}

#[tokio::test]
async fn sign_up_confirm_by_mail_sign_in_and_out() {
    let (app, smtp) = app_with_mail().await;
    let c = app.browser();
    let (status, _, location) = app
        .submit(
            &c,
            "/signup",
            "/signup",
            &[("email", "Ana@Example.com"), ("password", PW)],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/signup/sent")));

    let mail = smtp.wait_for_mail_to("ana@example.com").await;
    assert!(
        mail.contains("Subject: Confirm your email address"),
        "{mail}"
    );
    assert!(mail.contains("Content-Type: text/html") && mail.contains("Content-Type: text/plain"));
    let link = link_in(&mail, &format!("{}/account/verify?token=", app.address));
    let path = link.trim_start_matches(&app.address).to_owned();

    // Opening the link changes nothing by itself (mail scanners open links too).
    let (status, page, _) = app.get_with(&c, &path).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.scalar("SELECT count(*) FROM accounts WHERE email_verified_at IS NOT NULL"),
        0
    );
    let token = path.split("token=").nth(1).unwrap().to_owned();
    let (status, _, location) = app
        .post_with(
            &c,
            "/account/verify",
            &[("csrf_token", &csrf_of(&page)), ("token", &token)],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/login?notice=verified"))
    );
    assert_eq!(app.scalar("SELECT count(*) FROM accounts WHERE email = 'ana@example.com' AND email_verified_at IS NOT NULL"), 1);

    // Wrong password: 422, generic message, email kept.
    let (status, body, _) = app
        .submit(
            &c,
            "/login",
            "/login",
            &[
                ("email", "ana@example.com"),
                ("password", "wrong password here"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body.contains("do not match an account") && body.contains(r#"value="ana@example.com""#)
    );

    // Sign in: a new session id.
    let before = current_session(&app, &c).await;
    let (status, _, location) = app
        .submit(
            &c,
            "/login",
            "/login",
            &[("email", "ana@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/account")));
    let (status, body, _) = app.get_with(&c, "/account").await;
    assert_eq!(status, 200);
    assert!(body.contains("ana@example.com"));
    let signed_in_token = app.scalar("SELECT count(*) FROM sessions WHERE account_id IS NOT NULL");
    assert_eq!(signed_in_token, 1);
    assert_eq!(app.scalar(&format!("SELECT count(*) FROM sessions WHERE token_hash = sha256('{before}'::bytea) AND account_id IS NOT NULL")), 0, "the pre-login session id is not the signed-in one");

    // Sign out; the old cookie is refused server-side afterwards.
    let cookie_value = {
        let r = c
            .get(format!("{}/account", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        app.scalar("SELECT count(*) FROM sessions WHERE account_id IS NOT NULL")
    };
    assert_eq!(cookie_value, 1);
    let (_, account_page, _) = app.get_with(&c, "/account").await;
    let (status, _, location) = app
        .post_with(&c, "/logout", &[("csrf_token", &csrf_of(&account_page))])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/login?notice=signed-out"))
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM sessions WHERE account_id IS NOT NULL"),
        0
    );
    let (status, _, location) = app.get_with(&c, "/account").await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/login?next=%2Faccount"))
    );
}

#[tokio::test]
async fn a_revoked_session_cookie_is_refused_server_side() {
    let app = spawn_app().await;
    app.create_user("bo@example.com", PW, "customer");
    let c = app.browser();
    app.login(&c, "bo@example.com", PW).await;
    // Replay the cookie from a second client after the session is deleted on the server.
    let r = c
        .get(format!("{}/account", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    app.sql("DELETE FROM sessions");
    let (status, _, location) = app.get_with(&c, "/account").await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/login?next=%2Faccount"))
    );
    // An idle session expires too.
    app.login(&c, "bo@example.com", PW).await;
    app.sql("UPDATE sessions SET last_seen_at = now() - interval '2 hours'");
    let (status, _, _) = app.get_with(&c, "/account").await;
    assert_eq!(status, 303);
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_or_from_another_site_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let c = app.browser();
    let (_, page, _) = app.get_with(&c, "/signup").await;
    let token = csrf_of(&page);
    for (label, form) in [
        (
            "missing",
            vec![("email", "eve@example.com"), ("password", PW)],
        ),
        (
            "wrong",
            vec![
                ("email", "eve@example.com"),
                ("password", PW),
                ("csrf_token", "x".repeat(43).leak()),
            ],
        ),
    ] {
        let (status, body, _) = app.post_with(&c, "/signup", &form).await;
        assert_eq!(status, 403, "{label}");
        assert!(body.contains("Nothing was changed"), "{label}: {body}");
    }
    // The right token, but posted from another origin.
    let r = c
        .post(format!("{}/signup", app.address))
        .header("Origin", "https://evil.example")
        .form(&[
            ("email", "eve@example.com"),
            ("password", PW),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // A client without the session cookie cannot use someone else's token.
    let (status, _, _) = app
        .post_with(
            &app.browser(),
            "/signup",
            &[
                ("email", "eve@example.com"),
                ("password", PW),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(app.scalar("SELECT count(*) FROM accounts"), 0);
    assert_eq!(app.scalar("SELECT count(*) FROM outbox"), 0);
    // And the genuine form works.
    let (status, _, _) = app
        .post_with(
            &c,
            "/signup",
            &[
                ("email", "eve@example.com"),
                ("password", PW),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(app.scalar("SELECT count(*) FROM accounts"), 1);
}

#[tokio::test]
async fn a_reset_link_works_once_and_expires_and_revokes_sessions() {
    let (app, smtp) = app_with_mail().await;
    app.create_user("cy@example.com", PW, "customer");
    let other_device = app.browser();
    app.login(&other_device, "cy@example.com", PW).await;

    let c = app.browser();
    let (status, _, location) = app
        .submit(
            &c,
            "/password/forgot",
            "/password/forgot",
            &[("email", "CY@example.com")],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/password/forgot/sent"))
    );
    let mail = smtp.wait_for_mail_to("cy@example.com").await;
    let link = link_in(&mail, &format!("{}/password/reset?token=", app.address));
    let path = link.trim_start_matches(&app.address).to_owned();
    let token = path.split("token=").nth(1).unwrap().to_owned();

    // A weak password is refused without using up the link.
    let (status, body, _) = app
        .submit(
            &c,
            &path,
            "/password/reset",
            &[("token", &token), ("password", "password1")],
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let new_pw = "Marble-Otter-Lantern-73";
    let (status, _, location) = app
        .submit(
            &c,
            &path,
            "/password/reset",
            &[("token", &token), ("password", new_pw)],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/login?notice=password-reset"))
    );
    // Once only.
    let (_, page, _) = app.get_with(&c, "/login").await;
    let (status, _, _) = app
        .post_with(
            &c,
            "/password/reset",
            &[
                ("csrf_token", &csrf_of(&page)),
                ("token", &token),
                ("password", "Another-Strong-Pass-99"),
            ],
        )
        .await;
    assert_eq!(status, 410);
    let (status, _, _) = app.get_with(&c, &path).await;
    assert_eq!(status, 410);
    // The other device was signed out; the new password works, the old one does not.
    let (status, _, _) = app.get_with(&other_device, "/account").await;
    assert_eq!(status, 303);
    let (status, _, _) = app
        .submit(
            &c,
            "/login",
            "/login",
            &[("email", "cy@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(status, 422);
    app.login(&c, "cy@example.com", new_pw).await;

    // An expired link is refused.
    let (status, _, _) = app
        .submit(
            &app.browser(),
            "/password/forgot",
            "/password/forgot",
            &[("email", "cy@example.com")],
        )
        .await;
    assert_eq!(status, 303);
    app.sql(
        "UPDATE account_tokens SET expires_at = now() - interval '1 minute' WHERE used_at IS NULL",
    );
    let second = loop {
        let all: Vec<String> = smtp
            .messages()
            .into_iter()
            .filter(|m| m.contains("Reset your password"))
            .collect();
        if all.len() == 2 {
            break crate::smtp::decode_qp(&all[1]);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let expired = link_in(&second, &format!("{}/password/reset?token=", app.address));
    let (status, body, _) = app
        .get_with(&c, expired.trim_start_matches(&app.address))
        .await;
    assert_eq!(status, 410);
    assert!(body.contains("This link has expired or was already used"));
}

/// Strips CSRF tokens so two pages can be compared.
fn without_tokens(body: &str) -> String {
    body.split(r#"name="csrf_token" value=""#)
        .map(|part| part.split_once('"').map(|(_, rest)| rest).unwrap_or(part))
        .collect::<Vec<_>>()
        .join("")
}

#[tokio::test]
async fn sign_in_sign_up_and_reset_answer_the_same_for_known_and_unknown_emails() {
    let app = spawn_app().await;
    app.create_user("dee@example.com", PW, "customer");
    let mut answers = Vec::new();
    for email in ["dee@example.com", "nobody@example.com"] {
        let c = app.browser();
        let login = app
            .submit(
                &c,
                "/login",
                "/login",
                &[("email", email), ("password", "Wrong-Password-123")],
            )
            .await;
        let signup = app
            .submit(
                &c,
                "/signup",
                "/signup",
                &[("email", email), ("password", PW)],
            )
            .await;
        let reset = app
            .submit(
                &c,
                "/password/forgot",
                "/password/forgot",
                &[("email", email)],
            )
            .await;
        answers.push((
            login.0,
            without_tokens(&login.1).replace(email, "EMAIL"),
            (signup.0, signup.2),
            (reset.0, reset.2),
        ));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, 422);
    // The owner of the existing address hears about the sign-up attempt instead.
    assert_eq!(app.scalar("SELECT count(*) FROM outbox WHERE kind = 'signup_existing' AND to_address = 'dee@example.com'"), 1);
}

#[tokio::test]
async fn repeated_failures_lock_the_account_until_the_lock_expires() {
    let app = spawn_app().await;
    app.create_user("eli@example.com", PW, "customer");
    let c = app.browser();
    for _ in 0..5 {
        let (status, _, _) = app
            .submit(
                &c,
                "/login",
                "/login",
                &[
                    ("email", "eli@example.com"),
                    ("password", "Wrong-Password-123"),
                ],
            )
            .await;
        assert_eq!(status, 422);
    }
    assert_eq!(
        app.scalar("SELECT count(*) FROM accounts WHERE locked_until > now()"),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'lockout'"),
        1
    );
    // Locked: even the right password fails, with the same answer.
    let (status, body, _) = app
        .submit(
            &c,
            "/login",
            "/login",
            &[("email", "eli@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("locked for a while"));
    // The lock expires by itself.
    app.sql("UPDATE accounts SET locked_until = now() - interval '1 second'");
    app.login(&c, "eli@example.com", PW).await;
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_ip() {
    let app = spawn_app_with(|c| c.auth_rate_per_minute = 2).await;
    let c = app.browser();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            app.submit(
                &c,
                "/login",
                "/login",
                &[
                    ("email", "x@example.com"),
                    ("password", "Wrong-Password-123"),
                ],
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses, vec![422, 422, 429]);
}

#[tokio::test]
async fn the_return_path_only_accepts_local_paths() {
    let app = spawn_app().await;
    app.create_user("fay@example.com", PW, "customer");
    for (next, expected) in [
        ("/account?x=1", "/account?x=1"),
        ("//evil.example/", "/account"),
        ("https://evil.example/", "/account"),
        ("/\\evil.example", "/account"),
    ] {
        let c = app.browser();
        let (status, _, location) = app
            .submit(
                &c,
                &format!("/login?next={}", q(next)),
                "/login",
                &[
                    ("email", "fay@example.com"),
                    ("password", PW),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(
            (status, location.as_deref()),
            (303, Some(expected)),
            "{next}"
        );
    }
    // The sign-in page itself never carries a foreign return path into its form.
    let (_, page, _) = app
        .get_with(&app.browser(), "/login?next=https%3A%2F%2Fevil.example")
        .await;
    assert!(!page.contains("evil.example"));
}

#[tokio::test]
async fn staff_and_admin_areas_are_guarded_in_one_place() {
    let app = spawn_app().await;
    app.create_user("cust@example.com", PW, "customer");
    app.create_user("staff@example.com", PW, "staff");
    app.create_user("admin@example.com", PW, "admin");
    app.sql("INSERT INTO stock_counts (location_id, opened_by) SELECT 1, id FROM accounts WHERE email = 'admin@example.com'");
    let get_routes = [
        "/staff",
        "/admin",
        "/admin/users",
        "/admin/outbox",
        "/admin/audit",
        "/admin/catalogue",
        "/admin/models/new",
        "/admin/models/1",
        "/admin/stock",
        "/admin/reports/stock",
        "/admin/reports/stock.csv",
        "/admin/reports/turnover",
        "/admin/reports/turnover.csv",
        "/admin/models/1/generate",
        "/admin/sales",
        "/admin/imports",
        "/admin/labels",
        "/admin/counts",
        "/admin/counts/1",
        "/admin/counts/1/lines.csv",
        "/staff/units",
        "/staff/units/1",
        "/staff/stations",
        "/staff/registrations",
        "/admin/registrations.csv?model=1",
        "/admin/warranty/extend?unit=1",
        "/staff/claims",
        "/admin/claims/service-levels",
        "/admin/claims/analytics",
        "/admin/claims/analytics.csv",
    ];
    let anonymous = app.browser();
    for path in get_routes {
        let (status, _, location) = app.get_with(&anonymous, path).await;
        assert_eq!(
            (status, location),
            (303, Some(format!("/login?next={}", q(path)))),
            "{path}"
        );
    }
    let customer = app.browser();
    app.login(&customer, "cust@example.com", PW).await;
    for path in get_routes {
        let (status, body, _) = app.get_with(&customer, path).await;
        assert_eq!(status, 403, "{path}");
        assert!(body.contains("Not allowed"), "{path}");
    }
    let (_, page, _) = app.get_with(&customer, "/account").await;
    let token = csrf_of(&page);
    for path in [
        "/admin/users/invite",
        "/admin/users/1/role",
        "/admin/outbox/1/retry",
        "/admin/models",
        "/admin/models/1",
        "/admin/models/1/lots",
        "/admin/locations",
        "/admin/claims/service-levels",
    ] {
        let (status, _, _) = app
            .post_with(
                &customer,
                path,
                &[
                    ("csrf_token", &token),
                    ("email", "x@example.com"),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(status, 403, "{path}");
    }
    assert_eq!(
        app.scalar("SELECT count(*) FROM accounts WHERE role = 'admin'"),
        1
    );
    let staff = app.browser();
    app.login(&staff, "staff@example.com", PW).await;
    for path in get_routes {
        let expected = if path.starts_with("/staff") { 200 } else { 403 };
        assert_eq!(app.get_with(&staff, path).await.0, expected, "{path}");
    }
    let admin = app.browser();
    app.login(&admin, "admin@example.com", PW).await;
    for path in get_routes {
        assert_eq!(app.get_with(&admin, path).await.0, 200, "{path}");
    }
}

#[tokio::test]
async fn mail_waits_out_an_smtp_outage_and_is_delivered_once() {
    let (app, smtp) = app_with_mail().await;
    app.create_user("gus@example.com", PW, "customer");
    smtp.stop();
    let (status, _, _) = app
        .submit(
            &app.browser(),
            "/password/forgot",
            "/password/forgot",
            &[("email", "gus@example.com")],
        )
        .await;
    assert_eq!(status, 303);
    // Attempts fail and the mail stays queued.
    for _ in 0..100 {
        if app.scalar("SELECT coalesce(max(attempts), 0) FROM outbox") >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(app.scalar("SELECT max(attempts) FROM outbox") >= 2);
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM outbox WHERE status = 'queued' AND last_error IS NOT NULL"
        ),
        1
    );
    let back = smtp.restart().await;
    back.wait_for_mail_to("gus@example.com").await;
    for _ in 0..100 {
        if app.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'") == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'"),
        1
    );
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(back.messages().len(), 1, "delivered exactly once");
}

#[tokio::test]
async fn an_admin_made_on_the_command_line_invites_staff_who_sign_in() {
    let (app, smtp) = app_with_mail().await;
    // The CLI, against this test's database, with the password piped in.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .args(["admin", "create", "--email", "root@example.com"])
        .env("DATABASE_URL", &app.db_url)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(PW.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Administrator root@example.com created")
    );

    let admin = app.browser();
    app.login(&admin, "root@example.com", PW).await;
    let (status, _, location) = app
        .submit(
            &admin,
            "/admin/users",
            "/admin/users/invite",
            &[("email", "sam@example.com"), ("role", "staff")],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/admin/users?notice=invited"))
    );
    let mail = smtp.wait_for_mail_to("sam@example.com").await;
    let link = link_in(&mail, &format!("{}/invite/accept?token=", app.address));
    let path = link.trim_start_matches(&app.address).to_owned();
    let token = path.split("token=").nth(1).unwrap().to_owned();
    let sam = app.browser();
    let (status, _, _) = app
        .submit(
            &sam,
            &path,
            "/invite/accept",
            &[("token", &token), ("password", "Copper-Heron-Gravel-58")],
        )
        .await;
    assert_eq!(status, 303);
    app.login(&sam, "sam@example.com", "Copper-Heron-Gravel-58")
        .await;
    assert_eq!(app.get_with(&sam, "/staff").await.0, 200);
    assert_eq!(app.get_with(&sam, "/admin").await.0, 403);

    // The admin sees the invitation in the outbox and the events in the security log.
    let (_, outbox, _) = app.get_with(&admin, "/admin/outbox").await;
    assert!(outbox.contains("sam@example.com"));
    let (_, log, _) = app
        .get_with(&admin, "/admin/audit?event=invite_accepted")
        .await;
    assert!(log.contains("invite_accepted"));
    // Roles change in the admin area; the last admin cannot be demoted.
    let sam_id = app.scalar("SELECT id FROM accounts WHERE email = 'sam@example.com'");
    let (status, _, _) = app
        .submit(
            &admin,
            "/admin/users",
            &format!("/admin/users/{sam_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(status, 303);
    // A role change ends the person's sessions; signed in again, the new role applies.
    assert_eq!(app.get_with(&sam, "/admin").await.0, 303);
    app.login(&sam, "sam@example.com", "Copper-Heron-Gravel-58")
        .await;
    assert_eq!(app.get_with(&sam, "/admin").await.0, 200);
    app.sql("UPDATE accounts SET role = 'staff' WHERE email = 'sam@example.com'");

    // Someone who signed up with an address but never confirmed it can neither sign in nor be
    // given more rights (the address may not be theirs).
    let mallory = app.browser();
    let (status, _, _) = app
        .submit(
            &mallory,
            "/signup",
            "/signup",
            &[("email", "newhire@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(status, 303);
    let (status, body, _) = app
        .submit(
            &mallory,
            "/login",
            "/login",
            &[("email", "newhire@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("Confirm your email address first"));
    let newhire = app.scalar("SELECT id FROM accounts WHERE email = 'newhire@example.com'");
    let (status, body, _) = app
        .submit(
            &admin,
            "/admin/users",
            &format!("/admin/users/{newhire}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(app.scalar("SELECT count(*) FROM accounts WHERE email = 'newhire@example.com' AND role = 'customer'"), 1);
    let root_id = app.scalar("SELECT id FROM accounts WHERE email = 'root@example.com'");
    let (status, body, _) = app
        .submit(
            &admin,
            "/admin/users",
            &format!("/admin/users/{root_id}/role"),
            &[("role", "customer")],
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        app.scalar("SELECT count(*) FROM accounts WHERE role = 'admin'"),
        1
    );
}

#[tokio::test]
async fn changing_the_password_signs_out_other_devices_and_data_can_be_exported_and_erased() {
    let app = spawn_app().await;
    app.create_user("hal@example.com", PW, "customer");
    let phone = app.browser();
    app.login(&phone, "hal@example.com", PW).await;
    let laptop = app.browser();
    app.login(&laptop, "hal@example.com", PW).await;

    // Wrong current password: refused, nothing changes.
    let (status, body, _) = app
        .submit(
            &laptop,
            "/account",
            "/account/password",
            &[
                ("current_password", "nope nope nope"),
                ("new_password", "Willow-Basalt-Comet-12"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("That is not your current password"));
    let (status, _, location) = app
        .submit(
            &laptop,
            "/account",
            "/account/password",
            &[
                ("current_password", PW),
                ("new_password", "Willow-Basalt-Comet-12"),
            ],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/account?notice=password-changed"))
    );
    assert_eq!(
        app.get_with(&laptop, "/account").await.0,
        200,
        "this device stays signed in"
    );
    assert_eq!(
        app.get_with(&phone, "/account").await.0,
        303,
        "the other device is signed out"
    );

    // Export.
    let r = laptop
        .get(format!("{}/account/export", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let json: serde_json::Value = r.json().await.unwrap();
    assert_eq!(json["account"]["email"], "hal@example.com");
    assert!(
        json["security_events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "password_changed")
    );

    // Sign out everywhere.
    app.login(&phone, "hal@example.com", "Willow-Basalt-Comet-12")
        .await;
    let (status, _, _) = app
        .submit(&laptop, "/account", "/account/sessions/revoke", &[])
        .await;
    assert_eq!(status, 303);
    assert_eq!(app.get_with(&phone, "/account").await.0, 303);
    assert_eq!(
        app.scalar("SELECT count(*) FROM sessions WHERE account_id IS NOT NULL"),
        0
    );

    // Delete: personal data erased, the row kept, sign-in impossible.
    app.login(&laptop, "hal@example.com", "Willow-Basalt-Comet-12")
        .await;
    let (status, _, location) = app
        .submit(
            &laptop,
            "/account",
            "/account/delete",
            &[("delete_password", "Willow-Basalt-Comet-12")],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/login?notice=deleted"))
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM accounts WHERE email = 'hal@example.com'"),
        0
    );
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM accounts WHERE deleted_at IS NOT NULL AND password_hash IS NULL"
        ),
        1
    );
    assert_eq!(app.scalar("SELECT count(*) FROM outbox WHERE kind = 'account_deleted' AND to_address = 'hal@example.com'"), 1);
    let (status, _, _) = app
        .submit(
            &app.browser(),
            "/login",
            "/login",
            &[
                ("email", "hal@example.com"),
                ("password", "Willow-Basalt-Comet-12"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    // The address is free for a new account.
    let (status, _, _) = app
        .submit(
            &app.browser(),
            "/signup",
            "/signup",
            &[("email", "hal@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM accounts WHERE email = 'hal@example.com' AND deleted_at IS NULL"
        ),
        1
    );
}

#[tokio::test]
async fn weak_passwords_and_bad_emails_are_refused_next_to_the_field() {
    let app = spawn_app().await;
    let c = app.browser();
    let (status, body, _) = app
        .submit(
            &c,
            "/signup",
            "/signup",
            &[("email", "ivy@example.com"), ("password", "password12345")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body.contains(r#"id="password-error""#) && body.contains("too easy to guess"),
        "{body}"
    );
    assert!(
        body.contains(r#"value="ivy@example.com""#),
        "the email is kept"
    );
    assert!(
        !body.contains("password12345"),
        "the password is never sent back"
    );
    let (status, body, _) = app
        .submit(
            &c,
            "/signup",
            "/signup",
            &[("email", "ivy@"), ("password", PW)],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains(r#"id="email-error""#));
    assert_eq!(app.scalar("SELECT count(*) FROM accounts"), 0);
}

#[tokio::test]
async fn changing_the_email_waits_for_the_new_address_to_confirm() {
    let (app, smtp) = app_with_mail().await;
    app.create_user("jo@example.com", PW, "customer");
    let c = app.browser();
    app.login(&c, "jo@example.com", PW).await;
    let (status, body, _) = app
        .submit(
            &c,
            "/account",
            "/account/email",
            &[
                ("new_email", "jo.new@example.com"),
                ("email_password", "wrong password!"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body.contains(r#"value="jo.new@example.com""#),
        "what was typed is kept"
    );
    let (status, _, location) = app
        .submit(
            &c,
            "/account",
            "/account/email",
            &[("new_email", "Jo.New@example.com"), ("email_password", PW)],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/account?notice=email-sent"))
    );
    // Nothing changes until the new address confirms; the old address is told.
    assert_eq!(
        app.scalar("SELECT count(*) FROM accounts WHERE email = 'jo@example.com'"),
        1
    );
    let notice = smtp.wait_for_mail_to("jo@example.com").await;
    assert!(notice.contains("jo.new@example.com"));
    let mail = smtp.wait_for_mail_to("jo.new@example.com").await;
    let link = link_in(
        &mail,
        &format!("{}/account/email/confirm?token=", app.address),
    );
    let path = link.trim_start_matches(&app.address).to_owned();
    let token = path.split("token=").nth(1).unwrap().to_owned();
    let (status, _, location) = app
        .submit(&c, &path, "/account/email/confirm", &[("token", &token)])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/account?notice=email-changed"))
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM accounts WHERE email = 'jo.new@example.com'"),
        1
    );
    app.login(&app.browser(), "jo.new@example.com", PW).await;
}

#[tokio::test]
async fn the_worker_command_delivers_queued_mail_on_its_own() {
    let smtp = SmtpServer::start().await;
    let app = spawn_app().await; // no worker inside this portal
    app.create_user("kit@example.com", PW, "customer");
    let (status, _, _) = app
        .submit(
            &app.browser(),
            "/password/forgot",
            "/password/forgot",
            &[("email", "kit@example.com")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE status = 'queued'"),
        1
    );
    let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .arg("worker")
        .env("DATABASE_URL", &app.db_url)
        .env("PORTAL_SMTP_URL", format!("smtp://127.0.0.1:{}", smtp.port))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    smtp.wait_for_mail_to("kit@example.com").await;
    for _ in 0..100 {
        if app.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'") == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
    let status = worker.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(
        app.scalar("SELECT count(*) FROM outbox WHERE status = 'sent'"),
        1
    );
}

#[tokio::test]
async fn links_mailed_before_a_password_change_stop_working() {
    let (app, smtp) = app_with_mail().await;
    app.create_user("lu@example.com", PW, "customer");
    let (status, _, _) = app
        .submit(
            &app.browser(),
            "/password/forgot",
            "/password/forgot",
            &[("email", "lu@example.com")],
        )
        .await;
    assert_eq!(status, 303);
    let mail = smtp.wait_for_mail_to("lu@example.com").await;
    let old_link = link_in(&mail, &format!("{}/password/reset?token=", app.address));
    let c = app.browser();
    app.login(&c, "lu@example.com", PW).await;
    let (status, _, _) = app
        .submit(
            &c,
            "/account",
            "/account/password",
            &[
                ("current_password", PW),
                ("new_password", "Saffron-Glacier-Pepper-40"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, _) = app
        .get_with(&c, old_link.trim_start_matches(&app.address))
        .await;
    assert_eq!(
        status, 410,
        "a reset link from before the change no longer works"
    );
}
