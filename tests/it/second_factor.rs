//! Two-step sign-in over real HTTP: setting up an authenticator app, the code after the
//! password (each code once, five wrong ones lock the account, a code that waits too long is
//! void), the admin area closed until it is set up, turning it off, and the command-line reset.

use recall_portal::config::SecondFactorPolicy;
use recall_portal::domain::totp;

use crate::helpers::*;

/// RFC 4648 base32 (what the setup page shows for typing), spaces ignored.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        let v = ALPHABET
            .find(c)
            .unwrap_or_else(|| panic!("{c} is not base32")) as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// The code an authenticator app shows `steps` steps from now.
fn code(secret: &[u8], steps: i64) -> String {
    totp::code_at_step(
        secret,
        totp::step_at(chrono::Utc::now().timestamp()) + steps,
    )
}

/// The code of `step` (a test that runs across a 30-second boundary stays exact).
fn at(secret: &[u8], step: i64) -> String {
    totp::code_at_step(secret, step)
}

/// The last step whose code was accepted.
fn used(app: &TestApp) -> i64 {
    app.scalar("SELECT last_step AS v FROM account_totp")
}

/// Sets two-step sign-in up for the signed-in `client` through the pages; returns the secret.
async fn set_up(app: &TestApp, client: &reqwest::Client) -> Vec<u8> {
    let (status, _, location) = app
        .submit(client, "/account/2fa", "/account/2fa/start", &[])
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/account/2fa#setup"))
    );
    let (status, page, _) = app.get_with(client, "/account/2fa").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"role="img" aria-label="QR code for your authenticator app""#));
    let key = page
        .split(r#"<code class="key">"#)
        .nth(1)
        .and_then(|r| r.split("</code>").next())
        .unwrap_or_else(|| panic!("no key on {page}"));
    let secret = base32_decode(key);
    assert_eq!(secret.len(), totp::SECRET_BYTES);
    // A wrong code or a wrong password switches nothing on.
    for (c, pw) in [
        ("000000", USER_PW),
        (&*code(&secret, 0), "not my password at all"),
    ] {
        let (status, page, _) = app
            .submit(
                client,
                "/account/2fa",
                "/account/2fa/enable",
                &[("code", c), ("password", pw)],
            )
            .await;
        assert_eq!(status, 422, "{page}");
        assert!(
            page.contains(r#"<code class="key">"#),
            "the setup goes on: {page}"
        );
    }
    assert_eq!(app.scalar("SELECT count(*) AS v FROM account_totp"), 0);
    // Reset the failure count the wrong password left (it counts towards the lockout).
    app.sql("UPDATE accounts SET failed_logins = 0");
    let (status, _, location) = app
        .submit(
            client,
            "/account/2fa",
            "/account/2fa/enable",
            &[("code", &code(&secret, 0)), ("password", USER_PW)],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/account/2fa?notice=on"))
    );
    secret
}

/// Signs in with the password on a new browser; returns it and where it was sent.
async fn password_step(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let c = app.browser();
    let (status, body, location) = app
        .submit(
            &c,
            "/login",
            "/login",
            &[("email", email), ("password", USER_PW)],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    (c, location.unwrap())
}

/// Posts a code with the session's token (read from the sign-in page, which the waiting
/// session also shows, so a voided wait can be posted to as well).
async fn send_code(
    app: &TestApp,
    c: &reqwest::Client,
    code: &str,
) -> (u16, String, Option<String>) {
    let (_, page, _) = app.get_with(c, "/login").await;
    app.post_with(
        c,
        "/login/code",
        &[("csrf_token", &csrf_of(&page)), ("code", code)],
    )
    .await
}

#[tokio::test]
async fn an_admin_sets_it_up_before_the_area_opens_then_signs_in_with_each_code_once() {
    let app = spawn_app_with(|c| c.require_2fa = SecondFactorPolicy::Admin).await;
    let admin = user(&app, "boss@example.com", "admin").await;
    let customer = user(&app, "ann@example.com", "customer").await;
    // Closed until it is set up; a customer's account is not concerned.
    for area in ["/admin", "/admin/users", "/staff"] {
        let (status, _, location) = app.get_with(&admin, area).await;
        assert_eq!(
            (status, location.as_deref()),
            (303, Some("/account/2fa?required=1")),
            "{area}"
        );
    }
    let (_, page, _) = app.get_with(&admin, "/account/2fa?required=1").await;
    assert!(page.contains("Your role needs two-step sign-in"), "{page}");
    let (status, _, _) = app.get_with(&customer, "/account").await;
    assert_eq!(status, 200);

    // A browser signed in with the password alone before the setup.
    let (earlier, _) = password_step(&app, "boss@example.com").await;
    let (status, _, _) = app.get_with(&earlier, "/account").await;
    assert_eq!(status, 200);
    let secret = set_up(&app, &admin).await;
    let (status, _, _) = app.get_with(&admin, "/admin").await;
    assert_eq!(status, 200);
    // Every session now has shown a code: the earlier one is signed out.
    let (status, _, location) = app.get_with(&earlier, "/account").await;
    assert!(status == 303 && location.unwrap().starts_with("/login"));
    // A second setup cannot replace the secret (that takes turning it off, with a code).
    let (status, _, location) = app
        .submit(&admin, "/account", "/account/2fa/start", &[])
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/account/2fa")));
    assert_eq!(
        app.scalar("SELECT count(*) AS v FROM session_second_factor WHERE purpose = 'enrol'"),
        0
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS v FROM audit_log WHERE event = 'mfa_enabled'"),
        1
    );
    // The owner is told, in the same transaction as the change.
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS v FROM outbox WHERE kind = 'second_factor_changed' \
             AND to_address = 'boss@example.com' AND subject = 'Two-step sign-in is on'"
        ),
        1
    );
    // The admin's role keeps it on (the page offers no form; a forged one is refused too).
    let (_, page, _) = app.get_with(&admin, "/account/2fa").await;
    assert!(!page.contains("/account/2fa/disable"), "{page}");
    let (_, account, _) = app.get_with(&admin, "/account").await;
    let (status, page, _) = app
        .post_with(
            &admin,
            "/account/2fa/disable",
            &[
                ("csrf_token", &csrf_of(&account)),
                ("code", &code(&secret, 1)),
                ("password", USER_PW),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        page.contains("Your role needs two-step sign-in, so it stays on"),
        "{page}"
    );

    // The password alone signs nobody in.
    let (c, location) = password_step(&app, "boss@example.com").await;
    assert_eq!(location, "/login/code");
    let (status, _, location) = app.get_with(&c, "/admin").await;
    assert!(
        status == 303 && location.unwrap().starts_with("/login"),
        "{status}"
    );
    let (status, page, _) = app.get_with(&c, "/login/code").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"autocomplete="one-time-code""#), "{page}");
    let (status, _, _) = send_code(&app, &c, "123456").await;
    assert_eq!(status, 422);
    // The code used to switch it on is spent; the next one (the app's clock a little ahead)
    // signs in, once.
    let spent = used(&app);
    let (status, _, _) = send_code(&app, &c, &at(&secret, spent)).await;
    assert_eq!(status, 422, "a code works once");
    let next = at(&secret, spent + 1);
    let (status, _, location) = send_code(&app, &c, &next).await;
    assert_eq!((status, location.as_deref()), (303, Some("/admin")));
    let (status, _, _) = app.get_with(&c, "/admin").await;
    assert_eq!(status, 200);
    let (c2, _) = password_step(&app, "boss@example.com").await;
    let (status, _, _) = send_code(&app, &c2, &next).await;
    assert_eq!(status, 422, "the same code again");

    // A code that waits too long is void: the password comes first again.
    app.sql("UPDATE session_second_factor SET started_at = now() - interval '6 minutes'");
    let (status, _, location) = send_code(&app, &c2, &code(&secret, 0)).await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/login?notice=code-expired"))
    );

    // Five wrong codes lock the account, like five wrong passwords.
    app.sql("UPDATE accounts SET failed_logins = 0");
    let (c3, _) = password_step(&app, "boss@example.com").await;
    let mut last = (0, None);
    for _ in 0..5 {
        let (status, _, location) = send_code(&app, &c3, "000000").await;
        last = (status, location);
    }
    assert_eq!(
        (last.0, last.1.as_deref()),
        (303, Some("/login?notice=locked"))
    );
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS v FROM accounts WHERE email = 'boss@example.com' AND locked_until > now()"
        ),
        1
    );
    assert!(
        app.scalar(
            "SELECT count(*) AS v FROM audit_log WHERE event = 'lockout' AND detail = 'wrong code'"
        ) == 1
    );

    // A lost phone: an administrator resets it on the command line; the next sign-in needs
    // the password only, and the area asks for a new setup.
    app.sql("UPDATE accounts SET locked_until = NULL, failed_logins = 0");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recall-portal"))
        .args(["admin", "reset-2fa", "--email", "boss@example.com"])
        .env("DATABASE_URL", &app.db_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(app.scalar("SELECT count(*) AS v FROM account_totp"), 0);
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS v FROM outbox WHERE subject = 'Your two-step sign-in was reset'"
        ),
        1
    );
    // Whoever was signed in signs in again.
    let (status, _, _) = app.get_with(&c, "/account").await;
    assert_eq!(status, 303);
    let (c4, location) = password_step(&app, "boss@example.com").await;
    assert_eq!(location, "/admin");
    let (_, _, location) = app.get_with(&c4, "/admin").await;
    assert_eq!(location.as_deref(), Some("/account/2fa?required=1"));
}

#[tokio::test]
async fn a_customer_may_turn_it_on_and_off_with_a_code_and_the_password() {
    let app = spawn_app_with(|c| c.require_2fa = SecondFactorPolicy::Admin).await;
    let ann = user(&app, "ann@example.com", "customer").await;
    let secret = set_up(&app, &ann).await;
    let (c, location) = password_step(&app, "ann@example.com").await;
    assert_eq!(location, "/login/code");
    let next = used(&app) + 1;
    let (status, _, location) = send_code(&app, &c, &at(&secret, next)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/account")));
    // Off needs a fresh code and the password.
    let (status, _, _) = app
        .submit(
            &c,
            "/account/2fa",
            "/account/2fa/disable",
            &[("code", &at(&secret, next)), ("password", USER_PW)],
        )
        .await;
    assert_eq!(status, 422, "that code was spent signing in");
    // A wrong code here counts towards the lockout, like one at sign-in.
    assert_eq!(
        app.scalar(
            "SELECT failed_logins::bigint AS v FROM accounts WHERE email = 'ann@example.com'"
        ),
        1
    );
    app.sql("UPDATE account_totp SET last_step = last_step - 10");
    let (status, _, location) = app
        .submit(
            &c,
            "/account/2fa",
            "/account/2fa/disable",
            &[("code", &code(&secret, 0)), ("password", USER_PW)],
        )
        .await;
    assert_eq!(
        (status, location.as_deref()),
        (303, Some("/account/2fa?notice=off"))
    );
    assert_eq!(
        app.scalar("SELECT count(*) AS v FROM outbox WHERE subject = 'Two-step sign-in is off'"),
        1
    );
    let (_, location) = password_step(&app, "ann@example.com").await;
    assert_eq!(location, "/account");
}
