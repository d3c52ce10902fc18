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

/// The serious and critical violations axe finds on the page at `url`, one line each.
async fn audit(
    client: &Client,
    axe: &str,
    url: &str,
) -> Result<Vec<String>, fantoccini::error::CmdError> {
    client.goto(url).await?;
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
                .map(|v| format!("{url}: {}", v.as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_else(|| vec![format!("{url}: axe gave {found}")]))
}

async fn sign_in(
    client: &Client,
    app: &TestApp,
    email: &str,
) -> Result<(), fantoccini::error::CmdError> {
    client.goto(&format!("{}/login", app.address)).await?;
    client
        .find(Locator::Id("email"))
        .await?
        .send_keys(email)
        .await?;
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
    }
    client.delete_all_cookies().await?;
    Ok(())
}

#[tokio::test]
async fn every_page_type_passes_axe_at_phone_and_desktop_sizes() {
    let Some(axe) = axe_source() else { return };
    let app = spawn_app().await;
    let Some((client, _driver, _profile)) = browser().await else {
        return;
    };
    // Something on every page: a customer's registration and claim, a draft recall.
    let customer = user(&app, "a11y-customer@example.com", "customer").await;
    let reg = crate::claims::registered(&app, &customer, "SN1705").await;
    let claim = crate::claims::filed(&app, &customer, reg).await;
    app.create_user("a11y-staff@example.com", USER_PW, "staff");
    let admin = user(&app, "a11y-admin@example.com", "admin").await;
    let recall = crate::recalls::draft(&app, &admin, "RC-A11Y").await;
    let unit = app.scalar("SELECT id AS v FROM units WHERE serial = 'SN1705'");
    let model = app.scalar("SELECT model_id AS v FROM units WHERE serial = 'SN1705'");

    let public = vec![
        "/".to_owned(),
        "/check?serial=SN0700".to_owned(),
        "/check?serial=AB%231".to_owned(),
        "/check?serial=SN9999".to_owned(),
        "/recalls".to_owned(),
        "/login".to_owned(),
        "/signup".to_owned(),
        "/password/forgot".to_owned(),
        "/register?gtin=09506000134352&serial=SN0701".to_owned(),
        "/no/such/page".to_owned(),
    ];
    let customer_pages = vec![
        "/account".to_owned(),
        "/account/products".to_owned(),
        format!("/account/products/{reg}"),
        format!("/account/products/{reg}/claim"),
        "/account/claims".to_owned(),
        format!("/account/claims/{claim}"),
    ];
    let staff_pages = vec![
        "/staff".to_owned(),
        "/staff/claims".to_owned(),
        format!("/staff/claims/{claim}"),
        "/staff/units".to_owned(),
        format!("/staff/units/{unit}"),
        "/staff/registrations".to_owned(),
        "/staff/stations".to_owned(),
    ];
    let admin_pages = vec![
        "/admin".to_owned(),
        "/admin/catalogue".to_owned(),
        format!("/admin/models/{model}"),
        "/admin/models/new".to_owned(),
        "/admin/stock".to_owned(),
        "/admin/sales".to_owned(),
        "/admin/imports".to_owned(),
        "/admin/counts".to_owned(),
        "/admin/recalls".to_owned(),
        format!("/admin/recalls/{recall}"),
        "/admin/reports/stock".to_owned(),
        "/admin/claims/analytics".to_owned(),
        "/admin/claims/service-levels".to_owned(),
        "/admin/users".to_owned(),
        "/admin/tokens".to_owned(),
        "/admin/outbox".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/labels".to_owned(),
    ];
    let result = async {
        let mut found = Vec::new();
        for (width, height, size) in [(412, 915, "phone"), (1366, 900, "desktop")] {
            client.set_window_size(width, height).await?;
            for (who, pages) in [
                (None, &public),
                (Some("a11y-customer@example.com"), &customer_pages),
                (Some("a11y-staff@example.com"), &staff_pages),
                (Some("a11y-admin@example.com"), &admin_pages),
            ] {
                if let Some(email) = who {
                    sign_in(&client, &app, email).await?;
                }
                for page in pages {
                    for v in audit(&client, &axe, &format!("{}{page}", app.address)).await? {
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
        "{} serious or critical accessibility violations:\n{}",
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
