//! Accessibility in a real browser: axe-core (WCAG 2.1 A and AA, and best practices) on every
//! page type, at a phone's size and a desktop's; no serious or critical violation may remain.
//! axe-core comes from npm (`.ci/run` installs it); the test skips without it or without
//! chromedriver only when CI is unset.

use fantoccini::{Client, Locator};

use crate::browser::browser;
use crate::helpers::*;

/// axe-core's script: `$AXE_JS`, where `.ci/run` installs it, or a local `npm install axe-core`.
fn axe_source() -> Option<String> {
    let candidates = [
        std::env::var("AXE_JS").ok(),
        Some("/var/cache/recall-portal-axe/node_modules/axe-core/axe.min.js".to_owned()),
        Some(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/node_modules/axe-core/axe.min.js"
            )
            .to_owned(),
        ),
    ];
    if let Some(path) = candidates
        .into_iter()
        .flatten()
        .find(|p| std::path::Path::new(p).exists())
    {
        return Some(std::fs::read_to_string(path).unwrap());
    }
    if std::env::var_os("CI").is_some() {
        panic!("axe-core is not installed, and the accessibility test must run in CI");
    }
    eprintln!("skipping the accessibility test: npm install axe-core (or set AXE_JS)");
    None
}

/// The serious and critical violations axe finds on the page the browser shows, one line each
/// (`label` names the page in the report).
async fn audit_here(
    client: &Client,
    axe: &str,
    label: &str,
) -> Result<Vec<String>, fantoccini::error::CmdError> {
    client
        .execute(&format!("{axe}\n;return typeof axe;"), vec![])
        .await?;
    let found = client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               axe.run(document, {
                 runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
                 resultTypes: ['violations'],
               }).then(r => done(r.violations
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')
                   .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '
                        + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))))
                 .catch(e => done(['axe failed: ' + e]));"#,
            vec![],
        )
        .await?;
    Ok(found
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| format!("{label}: {}", v.as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_else(|| vec![format!("{label}: axe gave {found}")]))
}

async fn sign_in(
    client: &Client,
    app: &TestApp,
    email: &str,
) -> Result<(), fantoccini::error::CmdError> {
    client.goto(&format!("{}/login", app.address)).await?;
    let Ok(field) = client.find(Locator::Id("email")).await else {
        panic!(
            "no sign-in form for {email} at {}: {}",
            client.current_url().await?,
            client.source().await?
        );
    };
    field.send_keys(email).await?;
    client
        .find(Locator::Id("password"))
        .await?
        .send_keys(USER_PW)
        .await?;
    client
        .find(Locator::Css("form button[type=submit]"))
        .await?
        .click()
        .await?;
    client.wait().for_element(Locator::Css("h1")).await?;
    Ok(())
}

async fn sign_out(client: &Client, app: &TestApp) -> Result<(), fantoccini::error::CmdError> {
    client.goto(&format!("{}/account", app.address)).await?;
    if let Ok(b) = client
        .find(Locator::Css("form[action='/logout'] button"))
        .await
    {
        b.click().await?;
        // Let the sign-out's answer arrive before going on: a navigation started while it is
        // still in flight can be overtaken by it.
        for _ in 0..100 {
            if client.current_url().await?.path() != "/account" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    client.delete_all_cookies().await?;
    Ok(())
}

/// Every page type, by who sees it. Placeholders are filled with records made for the test:
/// `{reg}` and `{claim}` a customer's registration and claim, `{unclaimed}` another product
/// with no claim open (one with a claim open sends its claim form to that claim), `{unit}` and `{model}` its unit and
/// model, `{recall}` a draft recall and `{launched}` one launched to that customer, `{link}` the
/// mailed acknowledgement link's token, `{draft}` a registration typed before signing in,
/// `{station}` a staff member's scanner station, `{pending}` a registration waiting for staff,
/// `{job}` an import, `{count}` a stock count.
const PUBLIC: &[&str] = &[
    "/",
    "/check?serial=SN0700",
    "/check?serial=AB%231",
    "/check?serial=SN9999",
    "/recalls",
    "/recalls/{launched}",
    "/recalls/{launched}/ack?t={link}",
    "/login",
    "/signup",
    "/signup/sent",
    "/password/forgot",
    "/password/forgot/sent",
    "/password/reset?token=expired-or-wrong",
    "/invite/accept?token=expired-or-wrong",
    "/register?gtin=09506000134352&serial=SN0701",
    "/register/finish?draft={draft}",
    "/no/such/page",
];
const CUSTOMER: &[&str] = &[
    "/account",
    "/account/2fa",
    "/account/verify",
    "/account/email/confirm?token=expired-or-wrong",
    "/account/products",
    "/account/products/{reg}",
    "/account/products/{unclaimed}/claim",
    "/account/claims",
    "/account/claims/{claim}",
    "/account/recalls/{launched}",
];
const STAFF: &[&str] = &[
    "/staff",
    "/staff/claims",
    "/staff/claims/{claim}",
    "/staff/units",
    "/staff/units/{unit}",
    "/staff/registrations",
    "/staff/registrations/{pending}",
    "/staff/stations",
    "/staff/stations/{station}",
];
const ADMIN: &[&str] = &[
    "/admin",
    "/admin/catalogue",
    "/admin/models/{model}",
    "/admin/models/{model}/generate",
    "/admin/models/new",
    "/admin/stock",
    "/admin/sales",
    "/admin/imports",
    "/admin/imports/{job}",
    "/admin/counts",
    "/admin/counts/{count}",
    "/admin/recalls",
    "/admin/recalls/{recall}",
    "/admin/recalls/{launched_id}",
    "/admin/recalls/{launched_id}/effectiveness",
    "/admin/reports/stock",
    "/admin/reports/turnover",
    "/admin/claims/analytics",
    "/admin/claims/service-levels",
    "/admin/warranty/extend",
    "/admin/users",
    "/admin/tokens",
    "/admin/outbox",
    "/admin/audit",
    "/admin/labels",
];
/// Audited on the way: the page that shows a new token's secret once, right after the form.
const AUDITED_IN_A_FLOW: &[&str] = &["/admin/tokens/{id}/created", "/login/code"];
/// GET routes that are not pages, with what they are.
const NOT_PAGES: &[(&str, &str)] = &[
    ("/account/products/{id}/proof", "the proof of purchase file"),
    ("/registrations/{id}/proof", "the proof of purchase file"),
    ("/account/claims/{id}/photos/{photo}", "a photo"),
    ("/claims/{id}/photos/{photo}", "a photo"),
    ("/models/{id}/picture", "a picture"),
    ("/static/{name}", "style sheets, scripts, icons"),
    ("/account/export", "the account's data as a JSON download"),
    ("/registrations.csv", "CSV"),
    ("/claims/analytics.csv", "CSV"),
    ("/reports/stock.csv", "CSV"),
    ("/reports/turnover.csv", "CSV"),
    ("/imports/{id}/report.csv", "CSV"),
    ("/counts/{id}/lines.csv", "CSV"),
    ("/recalls/{id}/units.csv", "CSV"),
    ("/healthz", "plain text for a load balancer"),
    ("/readyz", "plain text for a load balancer"),
    ("/metrics", "Prometheus text"),
    ("/api/openapi.json", "JSON"),
    ("/status", "JSON API"),
    ("/units/{gtin}/{serial}/history", "JSON API"),
    (
        "/01/{tail:.*}",
        "a redirect to the lookup or the registration",
    ),
];

/// `/a/{x}/b?q` → `/a/{}/b`.
fn shape(pattern: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in pattern.split('?').next().unwrap_or("").chars() {
        match c {
            '{' => {
                inside = true;
                out.push_str("{}");
            }
            '}' => inside = false,
            _ if inside => {}
            _ => out.push(c),
        }
    }
    let trimmed = out.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    }
}

/// GET route patterns in `src/web` (tests aside), as (file, pattern).
fn get_routes() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let source = source.split("#[cfg(test)]").next().unwrap();
            for (at, _) in source.match_indices("web::get()") {
                let before = &source[..at];
                let end = before.rfind('"').unwrap();
                let start = before[..end].rfind('"').unwrap() + 1;
                found.push((
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    before[start..end].to_owned(),
                ));
            }
        }
    }
    found
}

#[test]
fn every_get_route_is_audited_or_is_not_a_page() {
    let routes = get_routes();
    assert!(routes.len() > 60, "the route table was read: {routes:?}");
    let audited: Vec<String> = [PUBLIC, CUSTOMER, STAFF, ADMIN, AUDITED_IN_A_FLOW]
        .concat()
        .iter()
        .map(|p| shape(p))
        .collect();
    for (file, pattern) in routes {
        let s = shape(&pattern);
        let scoped = |p: &String| {
            *p == s || *p == shape(&format!("/staff{s}")) || *p == shape(&format!("/admin{s}"))
        };
        let page = audited.iter().any(scoped);
        let not_page = NOT_PAGES.iter().any(|(p, _)| shape(p) == s);
        assert!(
            page || not_page,
            "{file}: GET {pattern} is neither audited by axe (PUBLIC, CUSTOMER, STAFF, ADMIN) nor listed in NOT_PAGES"
        );
    }
}

#[tokio::test]
async fn every_page_type_passes_axe_at_phone_and_desktop_sizes() {
    let Some(axe) = axe_source() else { return };
    let app = spawn_app().await;
    let Some((client, _driver, _profile)) = browser().await else {
        return;
    };
    // Something on every page: a customer's registration and claim, a draft recall, a recall
    // launched to that customer, a station, a registration for staff to decide, an import and
    // a stock count.
    let customer = user(&app, "a11y-customer@example.com", "customer").await;
    let reg = crate::claims::registered(&app, &customer, "SN1705").await;
    let claim = crate::claims::filed(&app, &customer, reg).await;
    let unclaimed = crate::claims::registered(&app, &customer, "SN1706").await;
    let staff = user(&app, "a11y-staff@example.com", "staff").await;
    let admin = user(&app, "a11y-admin@example.com", "admin").await;
    let recall = crate::recalls::draft(&app, &admin, "RC-A11Y").await;
    let launched = crate::recalls::draft(&app, &admin, "RC-A11Y-L").await;
    crate::recalls::complete_notice(&app, &admin, launched).await;
    let unit = app.scalar("SELECT id AS v FROM units WHERE serial = 'SN1705'");
    let model = app.scalar("SELECT model_id AS v FROM units WHERE serial = 'SN1705'");
    crate::recalls::add_target(
        &app,
        &admin,
        launched,
        &[
            ("kind", "serials"),
            ("model", &model.to_string()),
            ("serials", "SN1705"),
        ],
        None,
    )
    .await;
    let (status, _, _) = app
        .submit(
            &admin,
            &format!("/admin/recalls/{launched}"),
            &format!("/admin/recalls/{launched}/launch"),
            &[],
        )
        .await;
    assert_eq!(status, 303);
    // The mailed link's token is made when the mail is sent; this test sends none, so the
    // notice gets a token of ours.
    let link = "a11yLinkToken0123456789abcdefghijklmnopqrs";
    app.sql(&format!(
        "UPDATE recall_notices SET token_hash = sha256('{link}'::bytea) WHERE campaign_id = {launched}"
    ));
    let (status, body, location) = app
        .submit(
            &staff,
            "/staff/stations",
            "/staff/stations",
            &[
                ("kind", "receive"),
                ("location", "WH-EU"),
                ("reference", ""),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    let station = location.unwrap();
    let (status, _, _) = app
        .submit(
            &staff,
            &station,
            &format!("{station}/scan"),
            &[("code", "SN0001")],
        )
        .await;
    assert_eq!(status, 303);
    let other = user(&app, "a11y-other@example.com", "customer").await;
    // An account with two-step sign-in, whose sign-in stops at the code page.
    app.create_user("a11y-2fa@example.com", USER_PW, "customer");
    app.sql(
        "INSERT INTO account_totp (account_id, secret) SELECT id, decode(repeat('ab', 20), 'hex') \
         FROM accounts WHERE email = 'a11y-2fa@example.com'",
    );
    let pending = crate::claims::registered(&app, &other, "SN1705").await;
    let (_, imports, _) = app.get_with(&admin, "/admin/imports").await;
    let upload = reqwest::multipart::Form::new()
        .text("csrf_token", csrf_of(&imports))
        .text("kind", "units")
        .part(
            "file",
            reqwest::multipart::Part::bytes(
                b"gtin,serial\n09521234543214,A1\n09521234543213,B 2\n".to_vec(),
            )
            .file_name("bad.csv")
            .mime_str("text/csv")
            .unwrap(),
        );
    let r = admin
        .post(format!("{}/admin/imports", app.address))
        .multipart(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let job = r.headers()["location"].to_str().unwrap().to_owned();
    let location = app.scalar("SELECT id AS v FROM locations WHERE code = 'WH-EU'");
    let (status, _, count) = app
        .submit(
            &admin,
            "/admin/counts",
            "/admin/counts",
            &[("location", &location.to_string())],
        )
        .await;
    assert_eq!(status, 303);
    let count = count.unwrap();
    let draft = crate::ownership::typed_draft(&app).await;
    let fill = |t: &str| {
        t.replace("{reg}", &reg.to_string())
            .replace("{unclaimed}", &unclaimed.to_string())
            .replace("{claim}", &claim.to_string())
            .replace("{unit}", &unit.to_string())
            .replace("{model}", &model.to_string())
            .replace("{recall}", &recall.to_string())
            .replace("{launched_id}", &launched.to_string())
            .replace("{launched}", "RC-A11Y-L")
            .replace("{link}", link)
            .replace("{draft}", &draft)
            .replace("{station}", station.trim_start_matches("/staff/stations/"))
            .replace("{pending}", &pending.to_string())
            .replace("{job}", job.trim_start_matches("/admin/imports/"))
            .replace(
                "{count}",
                count
                    .trim_start_matches("/admin/counts/")
                    .split('?')
                    .next()
                    .unwrap(),
            )
    };
    let lists: Vec<(Option<&str>, Vec<String>)> = [
        (None, PUBLIC),
        (Some("a11y-customer@example.com"), CUSTOMER),
        (Some("a11y-staff@example.com"), STAFF),
        (Some("a11y-admin@example.com"), ADMIN),
    ]
    .into_iter()
    .map(|(who, pages)| (who, pages.iter().map(|p| fill(p)).collect()))
    .collect();
    let result = async {
        let mut found = Vec::new();
        for (width, height, size) in [(412, 915, "phone"), (1366, 900, "desktop")] {
            client.set_window_size(width, height).await?;
            for (who, pages) in &lists {
                if let Some(email) = who {
                    sign_in(&client, &app, email).await?;
                }
                for page in pages {
                    let url = format!("{}{page}", app.address);
                    // The address must be the page meant, not a redirect to sign-in or an error.
                    client.goto(&url).await?;
                    let now = client.current_url().await?;
                    if now.path() != page.split('?').next().unwrap_or(page) {
                        found.push(format!("[{size}] {page}: the browser landed on {now}"));
                    }
                    for v in audit_here(&client, &axe, &url).await? {
                        found.push(format!("[{size}] {v}"));
                    }
                }
                if who.is_none() {
                    // The code after the password, reached the only way it can be.
                    sign_in(&client, &app, "a11y-2fa@example.com").await?;
                    wait_for_address(&client, "/login/code").await?;
                    for v in audit_here(&client, &axe, "/login/code").await? {
                        found.push(format!("[{size}] {v}"));
                    }
                    client.delete_all_cookies().await?;
                }
                if *who == Some("a11y-customer@example.com") {
                    // Two-step sign-in being set up: the QR code and the key to type.
                    client.goto(&format!("{}/account/2fa", app.address)).await?;
                    client
                        .find(Locator::Css("form[action='/account/2fa/start'] button"))
                        .await?
                        .click()
                        .await?;
                    wait_for_address(&client, "#setup").await?;
                    client.find(Locator::Css("code.key")).await?;
                    for v in audit_here(&client, &axe, "/account/2fa (setting up)").await? {
                        found.push(format!("[{size}] {v}"));
                    }
                }
                if *who == Some("a11y-admin@example.com") {
                    // A new token's page, reached the only way it can be: by making one.
                    client
                        .goto(&format!("{}/admin/tokens", app.address))
                        .await?;
                    client
                        .find(Locator::Css("input[name=name]"))
                        .await?
                        .send_keys(&format!("A11y {size}"))
                        .await?;
                    client
                        .find(Locator::Css("input[type=checkbox]"))
                        .await?
                        .click()
                        .await?;
                    client
                        .find(Locator::Css(
                            "form[action='/admin/tokens'] button[type=submit]",
                        ))
                        .await?
                        .click()
                        .await?;
                    wait_for_address(&client, "/created").await?;
                    for v in audit_here(&client, &axe, "/admin/tokens/{id}/created").await? {
                        found.push(format!("[{size}] {v}"));
                    }
                }
                if who.is_some() {
                    sign_out(&client, &app).await?;
                }
            }
        }
        Ok::<_, fantoccini::error::CmdError>(found)
    }
    .await;
    let _ = client.close().await;
    let found = result.expect("browser audit");
    assert!(
        found.is_empty(),
        "{} serious or critical accessibility violations or pages not reached:\n{}",
        found.len(),
        found.join("\n")
    );
}

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const SPACE: &str = "\u{E00D}";

/// The element with the focus, as the keyboard user meets it.
#[derive(Debug, Clone)]
struct Focus {
    tag: String,
    kind: String,
    name: String,
    text: String,
    value: String,
    /// An outline or a shadow shows where the focus is.
    visible: bool,
}

async fn focused(client: &Client) -> Result<Focus, fantoccini::error::CmdError> {
    let v = client
        .execute(
            r#"const e = document.activeElement; const s = getComputedStyle(e);
               return [e.tagName.toLowerCase(), e.type || '', e.name || '',
                       (e.innerText || '').trim().slice(0, 80), e.value || '',
                       (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'];"#,
            vec![],
        )
        .await?;
    let s = |i: usize| v[i].as_str().unwrap_or("").to_owned();
    Ok(Focus {
        tag: s(0),
        kind: s(1),
        name: s(2),
        text: s(3),
        value: s(4),
        visible: v[5].as_bool().unwrap_or(false),
    })
}

/// Presses `keys` one after the other on the keyboard (whatever has the focus, file fields
/// included: an element's `send_keys` would take a file name there).
async fn press(client: &Client, keys: &str) -> Result<(), fantoccini::error::CmdError> {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let mut actions = KeyActions::new("keyboard".to_owned());
    for c in keys.chars() {
        actions = actions
            .then(KeyAction::Down { value: c })
            .then(KeyAction::Up { value: c });
    }
    client.perform_actions(actions).await
}

/// Presses Tab until `wanted` has the focus; every element passed on the way must show its
/// focus.
async fn tab_to(
    client: &Client,
    what: &str,
    wanted: impl Fn(&Focus) -> bool,
) -> Result<Focus, fantoccini::error::CmdError> {
    for _ in 0..80 {
        press(client, TAB).await?;
        let f = focused(client).await?;
        assert!(f.visible, "no visible focus on {f:?} on the way to {what}");
        if wanted(&f) {
            return Ok(f);
        }
    }
    panic!("{what} cannot be reached with the Tab key");
}

/// Types a date into a focused date field, as a person with a US-English browser does
/// (month, day, year).
async fn type_date(
    client: &Client,
    date: chrono::NaiveDate,
) -> Result<(), fantoccini::error::CmdError> {
    press(client, &date.format("%m%d%Y").to_string()).await?;
    let f = focused(client).await?;
    assert_eq!(f.value, date.to_string(), "the date typed into {}", f.name);
    Ok(())
}

/// Fills the form around the focus with the keyboard alone: Tab from field to field, typing
/// `texts` into the fields they name, `dates` into date fields, Space on the first radio of
/// `radios`' groups, and Enter on the submit button.
async fn fill_by_keyboard(
    client: &Client,
    texts: &[(&str, &str)],
    dates: &[(&str, chrono::NaiveDate)],
    radios: &[&str],
) -> Result<(), fantoccini::error::CmdError> {
    for _ in 0..80 {
        let f = focused(client).await?;
        if let Some((_, text)) = texts.iter().find(|(n, _)| *n == f.name) {
            if f.value.is_empty() {
                press(client, text).await?;
            }
        } else if let Some((_, date)) = dates.iter().find(|(n, _)| *n == f.name) {
            type_date(client, *date).await?;
        } else if f.kind == "radio" && radios.contains(&f.name.as_str()) {
            press(client, SPACE).await?;
        } else if f.tag == "button" && f.kind == "submit" {
            return press(client, ENTER).await;
        }
        press(client, TAB).await?;
        let mut next = focused(client).await?;
        if next.kind == "date" && next.name == f.name {
            // Chromium's date field has a calendar button of its own, inside the field (it
            // draws its own focus ring there): one more Tab leaves the field.
            press(client, TAB).await?;
            next = focused(client).await?;
        }
        assert!(next.visible, "no visible focus on {next:?} in the form");
    }
    panic!("the form's submit button cannot be reached with the Tab key");
}

#[tokio::test]
async fn lookup_register_and_claim_with_the_keyboard_alone() {
    let app = spawn_app().await;
    let Some((client, _driver, _profile)) = browser().await else {
        return;
    };
    app.create_user("keys@example.com", USER_PW, "customer");
    let today = chrono::Utc::now().date_naive();
    let result = async {
        // Lookup: Tab to the serial field, type, Enter.
        client.goto(&format!("{}/", app.address)).await?;
        tab_to(&client, "the serial field", |f| f.name == "serial").await?;
        press(&client, "SN0702").await?;
        press(&client, ENTER).await?;
        let title = client
            .wait()
            .for_element(Locator::Css("h1#unit-title"))
            .await?
            .text()
            .await?;

        // Sign in: Tab to the email, type, Tab, type the password, Enter.
        client.goto(&format!("{}/login", app.address)).await?;
        tab_to(&client, "the email field", |f| f.name == "email").await?;
        press(&client, "keys@example.com").await?;
        tab_to(&client, "the password field", |f| f.name == "password").await?;
        press(&client, USER_PW).await?;
        press(&client, ENTER).await?;
        client.wait().for_element(Locator::Id("acct-title")).await?;

        // Register: from the lookup's answer, Tab to "Register this product", Enter, fill in.
        client
            .goto(&format!("{}/check?serial=SN0702", app.address))
            .await?;
        tab_to(&client, "the register link", |f| {
            f.tag == "a" && f.text.starts_with("Register this product")
        })
        .await?;
        press(&client, ENTER).await?;
        client
            .wait()
            .for_element(Locator::Css("form[action='/register']"))
            .await?;
        press(&client, TAB).await?;
        fill_by_keyboard(
            &client,
            &[("place_of_purchase", "Hardware store")],
            &[("purchased_on", today - chrono::Days::new(30))],
            &[],
        )
        .await?;
        wait_for_address(&client, "/account/products").await?;
        let registered = client.current_url().await?.to_string();

        // Claim: to the product, Tab to "Claim warranty", Enter, fill in, send.
        let reg = app.scalar(
            "SELECT r.id AS v FROM registrations r JOIN units u ON u.id = r.unit_id \
             WHERE u.serial = 'SN0702' AND r.status = 'active'",
        );
        client
            .goto(&format!("{}/account/products/{reg}", app.address))
            .await?;
        tab_to(&client, "the claim link", |f| {
            f.tag == "a" && f.text == "Claim warranty"
        })
        .await?;
        press(&client, ENTER).await?;
        client
            .wait()
            .for_element(Locator::Css("form textarea#description"))
            .await?;
        press(&client, TAB).await?;
        fill_by_keyboard(
            &client,
            &[("description", "It stops after a minute and gets warm.")],
            &[("noticed_on", today - chrono::Days::new(2))],
            &["category"],
        )
        .await?;
        wait_for_address(&client, "/account/claims/").await?;
        let claim_page = client.find(Locator::Css("h1")).await?.text().await?;
        Ok::<_, fantoccini::error::CmdError>((title, registered, claim_page))
    }
    .await;
    let _ = client.close().await;
    let (title, registered, claim_page) = result.expect("keyboard journeys");
    assert!(title.contains("PowerCell"), "{title}");
    assert!(registered.contains("/account/products"), "{registered}");
    assert!(claim_page.contains("C-"), "{claim_page}");
    assert_eq!(
        app.scalar(
            "SELECT count(*) AS v FROM claims c JOIN registrations r ON r.id = c.registration_id \
             JOIN units u ON u.id = r.unit_id WHERE u.serial = 'SN0702' AND c.description LIKE 'It stops%'"
        ),
        1
    );
}

/// Waits (up to 10 s) until the browser's address contains `part`.
async fn wait_for_address(client: &Client, part: &str) -> Result<(), fantoccini::error::CmdError> {
    for _ in 0..100 {
        if client.current_url().await?.as_str().contains(part) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the browser never reached {part}; it is at {}",
        client.current_url().await?
    );
}
