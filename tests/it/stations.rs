//! Scanner stations: every form a scanner sends, each problem named at once, one commit, and a
//! browser at the station.

use fantoccini::Locator;

use crate::helpers::{TestApp, csrf_of, spawn_app};

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";
const GS: char = '\u{1d}';

async fn staff(app: &TestApp, email: &str) -> reqwest::Client {
    app.create_user(email, PW, "staff");
    let c = app.browser();
    app.login(&c, email, PW).await;
    c
}

/// Opens a station; returns its path.
async fn open(
    app: &TestApp,
    c: &reqwest::Client,
    kind: &str,
    location: &str,
    reference: &str,
) -> String {
    let (status, body, location) = app
        .submit(
            c,
            "/staff/stations",
            "/staff/stations",
            &[
                ("kind", kind),
                ("location", location),
                ("reference", reference),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    location.unwrap()
}

async fn scan(app: &TestApp, c: &reqwest::Client, station: &str, code: &str) {
    let (_, page, _) = app.get_with(c, station).await;
    let token = csrf_of(&page);
    let (status, body, _) = app
        .post_with(
            c,
            &format!("{station}/scan"),
            &[("csrf_token", &token), ("code", code)],
        )
        .await;
    assert_eq!(status, 303, "{body}");
}

async fn post(app: &TestApp, c: &reqwest::Client, station: &str, action: &str) -> String {
    let (_, page, _) = app.get_with(c, "/staff/stations").await;
    let token = csrf_of(&page);
    let (status, _, location) = app
        .post_with(c, &format!("{station}/{action}"), &[("csrf_token", &token)])
        .await;
    assert_eq!(status, 303);
    location.unwrap()
}

#[tokio::test]
async fn a_ship_station_checks_every_scan_at_once_and_commits_the_good_ones() {
    let app = spawn_app().await;
    let c = staff(&app, "pat@example.com").await;
    let station = open(&app, &c, "ship", "WH-EU", "DN-1").await;
    let scans = [
        format!("]d201{BATTERY}10ABC124{GS}21SN1001"),
        format!("https://id.example.com/01/{BATTERY}/21/SN1002"),
        "sn1003".to_owned(),
        "SN1003".to_owned(),
        "SN9999".to_owned(),
        "SN0001".to_owned(),
        format!("(01){BATTERY}(21)SN0002"),
        "Ks00301x".to_owned(),
        format!("]d201{BATTERY}10ABC123{GS}21SN1004"),
        "AB#1".to_owned(),
    ];
    for s in &scans {
        scan(&app, &c, &station, s).await;
    }
    let (_, page, _) = app.get_with(&c, &station).await;
    for expected in [
        "Ship from WH-EU",
        "Reference DN-1",
        "3 ready",
        "7 with a problem",
        "Duplicate: already scanned",
        "Unknown: no unit SN9999 is recorded",
        "SN0001 exists on 2 models: scan the code with the GTIN",
        "Already shipped",
        "Wrong location: recorded at WH-US, not at WH-EU",
        "The label says lot ABC123, the records say lot ABC124",
        "A serial number cannot contain “#”",
        "]d2010950600013435210ABC124[GS]21SN1001",
        "[GS]21SN1001",
    ] {
        assert!(page.contains(expected), "{expected:?} in {page}");
    }
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE serial IN ('SN1001','SN1002','SN1003') AND status = 'in_stock'"),
        3,
        "nothing changes before the commit"
    );
    let done = post(&app, &c, &station, "commit").await;
    let (_, page, _) = app.get_with(&c, &done).await;
    assert!(page.contains("Committed: 3 unit(s) shipped."), "{page}");
    assert!(
        !page.contains("id=\"code\""),
        "a committed station takes no more scans"
    );
    assert_eq!(
        app.scalar(&format!("SELECT count(*) FROM units WHERE model_id = (SELECT id FROM product_models WHERE gtin = '{BATTERY}') AND serial IN ('SN1001','SN1002','SN1003') AND status = 'shipped' AND location_id IS NULL")),
        3
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events e JOIN locations l ON l.id = e.location_id WHERE e.kind = 'shipped' AND e.reference = 'DN-1' AND l.code = 'WH-EU' AND e.actor = 'staff:pat@example.com'"),
        3
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM audit_log WHERE event = 'scan_batch_committed'"),
        1
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE serial = 'SN1004' AND status = 'in_stock'"),
        1,
        "scans with a problem are not applied"
    );
    // Committing again, or scanning into a committed station, changes nothing.
    let again = post(&app, &c, &station, "commit").await;
    assert!(again.ends_with("error=closed"), "{again}");
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events WHERE reference = 'DN-1'"),
        3
    );
}

#[tokio::test]
async fn receive_and_move_stations_update_location_and_history() {
    let app = spawn_app().await;
    let c = staff(&app, "pat@example.com").await;
    let receive = open(&app, &c, "receive", "WH-US", "").await;
    scan(&app, &c, &receive, "SN0600").await; // shipped battery back from a customer
    scan(&app, &c, &receive, "SN1500").await; // in stock at WH-EU: a move, not a receipt
    let (_, page, _) = app.get_with(&c, &receive).await;
    assert!(
        page.contains("In stock at WH-EU: use a move station to move it here"),
        "{page}"
    );
    post(&app, &c, &receive, "commit").await;
    assert_eq!(
        app.scalar("SELECT count(*) FROM units u JOIN locations l ON l.id = u.location_id WHERE u.serial = 'SN0600' AND u.model_id = (SELECT id FROM product_models WHERE gtin = '09506000134352') AND u.status = 'in_stock' AND l.code = 'WH-US'"),
        1
    );
    let mv = open(&app, &c, "move", "WH-US", "T-7").await;
    scan(&app, &c, &mv, "SN1500").await;
    scan(&app, &c, &mv, "Ks00301x").await;
    let (_, page, _) = app.get_with(&c, &mv).await;
    assert!(page.contains("Already at WH-US"), "{page}");
    // A problem scan can be removed from the list.
    let item = app.scalar("SELECT max(id) FROM scan_batch_items");
    let (_, page, _) = app.get_with(&c, &mv).await;
    let token = csrf_of(&page);
    let (status, _, _) = app
        .post_with(
            &c,
            &format!("{mv}/items/{item}/remove"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page, _) = app.get_with(&c, &mv).await;
    assert!(!page.contains("Already at WH-US"));
    post(&app, &c, &mv, "commit").await;
    let id = app.scalar("SELECT id FROM units WHERE serial = 'SN1500'");
    let (_, unit, _) = app.get_with(&c, &format!("/staff/units/{id}")).await;
    assert!(
        unit.contains("<dt>Location</dt><dd><code>WH-US</code>"),
        "{unit}"
    );
    assert!(unit.contains("<strong>moved</strong>"), "{unit}");
    assert!(unit.contains("from WH-EU"), "{unit}");
}

#[tokio::test]
async fn a_commit_refuses_units_that_changed_since_they_were_scanned() {
    let app = spawn_app().await;
    let c = staff(&app, "pat@example.com").await;
    let ship = open(&app, &c, "ship", "WH-EU", "").await;
    scan(&app, &c, &ship, "SN1600").await;
    scan(&app, &c, &ship, "SN1601").await;
    let events = app.scalar("SELECT count(*) FROM unit_events");
    app.sql("UPDATE units SET status = 'sold', location_id = NULL WHERE serial = 'SN1601'");
    let done = post(&app, &c, &ship, "commit").await;
    assert!(done.ends_with("error=stale"), "{done}");
    let (_, page, _) = app.get_with(&c, &done).await;
    assert!(
        page.contains("Nothing was committed: some units changed"),
        "{page}"
    );
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE serial = 'SN1600' AND status = 'in_stock'"),
        1
    );
    assert_eq!(app.scalar("SELECT count(*) FROM unit_events"), events);
    // Another person's station does not exist for them; a scan without the token is refused.
    let other = staff(&app, "kim@example.com").await;
    let (status, _, _) = app.get_with(&other, &ship).await;
    assert_eq!(status, 404);
    let (status, _, _) = app
        .post_with(&c, &format!("{ship}/scan"), &[("code", "SN1700")])
        .await;
    assert_eq!(status, 403);
    // A unit sold before it was picked is still on the shelf: it ships, and stays sold.
    app.sql("UPDATE units SET status = 'sold', sold_on = current_date WHERE serial = 'SN1650'");
    let ship2 = open(&app, &c, "ship", "WH-EU", "").await;
    scan(&app, &c, &ship2, "SN1650").await;
    let done = post(&app, &c, &ship2, "commit").await;
    assert!(done.ends_with("committed=1"), "{done}");
    assert_eq!(
        app.scalar("SELECT count(*) FROM units WHERE serial = 'SN1650' AND status = 'sold' AND location_id IS NULL"),
        1
    );
    // Bad choices are named.
    let (status, body, _) = app
        .submit(
            &c,
            "/staff/stations",
            "/staff/stations",
            &[("kind", "teleport"), ("location", "WH-EU")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("Choose receive, move or ship."));
    let (status, body, _) = app
        .submit(
            &c,
            "/staff/stations",
            "/staff/stations",
            &[("kind", "move"), ("location", "NOWHERE")],
        )
        .await;
    assert_eq!(status, 422);
    assert!(body.contains("Choose a location."));
}

#[tokio::test]
async fn a_person_at_a_ship_station_scans_with_a_keyboard_wedge_and_commits() {
    let app = spawn_app().await;
    app.create_user("pat@example.com", PW, "staff");
    let Some((client, _driver, _profile)) = crate::browser::browser().await else {
        return;
    };
    const ENTER: &str = "\u{E007}";
    let result = async {
        client.goto(&format!("{}/login", app.address)).await?;
        client
            .find(Locator::Id("email"))
            .await?
            .send_keys("pat@example.com")
            .await?;
        client
            .find(Locator::Id("password"))
            .await?
            .send_keys(PW)
            .await?;
        client
            .find(Locator::Css("form button[type=submit]"))
            .await?
            .click()
            .await?;
        client
            .wait()
            .for_element(Locator::Id("staff-title"))
            .await?;
        client
            .goto(&format!("{}/staff/stations", app.address))
            .await?;
        client
            .find(Locator::Css("input[value=ship]"))
            .await?
            .click()
            .await?;
        client
            .find(Locator::Css("#location option[value=WH-EU]"))
            .await?
            .click()
            .await?;
        client
            .find(Locator::Css("form button[type=submit]"))
            .await?
            .click()
            .await?;
        let code = client.wait().for_element(Locator::Id("code")).await?;
        // Three scans as a wedge types them, each ending in Enter, without waiting in between.
        // WebDriver cannot type the GS control character a scanner sends; put the element
        // string in the field as the scanner would have typed it, then press Enter.
        client
            .execute(
                "document.getElementById('code').value = arguments[0];",
                vec![serde_json::json!(format!(
                    "]d201{BATTERY}10ABC124{GS}21SN1201"
                ))],
            )
            .await?;
        code.send_keys(ENTER).await?;
        code.send_keys(&format!(
            "https://id.example.com/01/{BATTERY}/21/SN1202{ENTER}"
        ))
        .await?;
        code.send_keys(&format!("SN9999{ENTER}")).await?;
        let mut summary = String::new();
        for _ in 0..100 {
            // Read by script: the list is replaced as scans come back.
            summary = client
                .execute(
                    "return document.getElementById('scan-summary').textContent.trim()",
                    vec![],
                )
                .await?
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if summary.starts_with("2 ready, 1 with a problem") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let focused = client
            .execute(
                "return document.activeElement && document.activeElement.id",
                vec![],
            )
            .await?;
        let list = client
            .execute(
                "return document.getElementById('scan-list').textContent",
                vec![],
            )
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        client.find(Locator::Id("commit")).await?.click().await?;
        let notice = client
            .wait()
            .for_element(Locator::Css("p.notice.ok"))
            .await?
            .text()
            .await?;
        Ok::<_, fantoccini::error::CmdError>((summary, focused, list, notice))
    }
    .await;
    let _ = client.close().await;
    let (summary, focused, list, notice) = result.expect("browser journey");
    assert!(
        summary.starts_with("2 ready, 1 with a problem"),
        "{summary} {list}"
    );
    assert_eq!(
        focused,
        serde_json::json!("code"),
        "the input keeps the focus"
    );
    assert!(
        list.contains("Unknown: no unit SN9999 is recorded"),
        "{list}"
    );
    assert_eq!(notice, "Committed: 2 unit(s) shipped.");
    assert_eq!(
        app.scalar(
            "SELECT count(*) FROM units WHERE serial IN ('SN1201','SN1202') AND status = 'shipped'"
        ),
        2
    );
}
