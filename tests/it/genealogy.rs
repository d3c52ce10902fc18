//! Genealogy: components installed by scan or file, shown both ways, removed with a reason.

use crate::helpers::{TestApp, csrf_of, spawn_app};
use crate::import::{run_import, temp_dir, write};

const PW: &str = "correct horse battery staple";
const BATTERY: &str = "09506000134352";
const EBIKE: &str = "09506000134369";

fn ebike_serial(app: &TestApp, n: i64) -> (i64, String) {
    let id = app.scalar(&format!(
        "SELECT id FROM units WHERE model_id = (SELECT id FROM product_models WHERE gtin = '{EBIKE}') ORDER BY serial OFFSET {n} LIMIT 1"
    ));
    let len = app.scalar(&format!("SELECT length(serial) FROM units WHERE id = {id}"));
    // The serial itself, read digit by digit through scalar (which returns numbers).
    let mut serial = String::from("VC");
    for i in 3..=len {
        let c = app.scalar(&format!(
            "SELECT ascii(substr(serial, {i}, 1)) FROM units WHERE id = {id}"
        ));
        serial.push(char::from(c as u8));
    }
    (id, serial)
}

async fn install(app: &TestApp, c: &reqwest::Client, unit: i64, code: &str) -> String {
    let page = format!("/staff/units/{unit}");
    let (_, body, _) = app.get_with(c, &page).await;
    let token = csrf_of(&body);
    let (status, _, location) = app
        .post_with(
            c,
            &format!("/admin/units/{unit}/components"),
            &[("csrf_token", &token), ("component", code)],
        )
        .await;
    assert_eq!(status, 303);
    let (_, body, _) = app.get_with(c, &location.unwrap()).await;
    body
}

#[tokio::test]
async fn components_are_installed_by_scan_shown_both_ways_and_removed_with_a_reason() {
    let app = spawn_app().await;
    app.create_user("admin@example.com", PW, "admin");
    let c = app.browser();
    app.login(&c, "admin@example.com", PW).await;
    let (bike, bike_serial) = ebike_serial(&app, 0);
    let (bike2, _) = ebike_serial(&app, 1);
    let battery = app.scalar(&format!("SELECT id FROM units WHERE serial = 'SN1100' AND model_id = (SELECT id FROM product_models WHERE gtin = '{BATTERY}')"));

    let page = install(
        &app,
        &c,
        bike,
        &format!("]d201{BATTERY}10ABC124\u{1d}21SN1100"),
    )
    .await;
    assert!(page.contains("Component installed."), "{page}");
    let page = install(&app, &c, bike, &format!("(01){BATTERY}(10)ABC123")).await;
    assert!(page.contains("Component installed."), "{page}");
    assert!(page.contains("<code>SN1100</code>"), "{page}");
    assert!(page.contains("lot <code>ABC123</code>"), "{page}");

    // The other way round: the battery is in the bike; a battery of lot ABC123 is too, by lot.
    let (_, page, _) = app.get_with(&c, &format!("/staff/units/{battery}")).await;
    assert!(
        page.contains(&format!("<code>{bike_serial}</code>")),
        "{page}"
    );
    let in_lot = app.scalar("SELECT id FROM units WHERE serial = 'SN0100' AND lot_id = (SELECT id FROM lots WHERE code = 'ABC123')");
    let (_, page, _) = app.get_with(&c, &format!("/staff/units/{in_lot}")).await;
    assert!(
        page.contains("Its lot <code>ABC123</code> is a component of 1 unit(s)"),
        "{page}"
    );

    // Every refusal is named and changes nothing.
    let before = app.scalar("SELECT count(*) FROM unit_components");
    for (unit, code, expected) in [
        (bike2, "SN1100".to_owned(), "SN1100 is already installed in"),
        (
            battery,
            bike_serial.clone(),
            "This would put the unit inside itself",
        ),
        (
            battery,
            format!("(01){BATTERY}(21)SN1100"),
            "A unit cannot contain itself",
        ),
        (
            bike,
            format!("(01){BATTERY}(10)ABC123"),
            "The unit already contains lot ABC123",
        ),
        (bike, "SN9999".to_owned(), "There is no unit SN9999."),
        (bike, "SN0001".to_owned(), "SN0001 exists on 2 models"),
        (bike, format!("(01){BATTERY}(10)NOPE"), "has no lot NOPE"),
        (bike, "A#1".to_owned(), "cannot contain “#”"),
    ] {
        let page = install(&app, &c, unit, &code).await;
        assert!(page.contains(expected), "{code}: {expected:?} in {page}");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM unit_components"), before);
    let (_, body, _) = app.get_with(&c, &format!("/staff/units/{bike}")).await;
    let token = csrf_of(&body);
    let (status, _, _) = app
        .post_with(
            &c,
            "/admin/units/999999/components",
            &[("csrf_token", &token), ("component", "SN1101")],
        )
        .await;
    assert_eq!(status, 404, "no unit to install into");

    // Removal keeps the record, names the reason in both histories, frees the component.
    let link = app.scalar(&format!(
        "SELECT id FROM unit_components WHERE component_unit_id = {battery}"
    ));
    let (_, page, _) = app.get_with(&c, &format!("/staff/units/{bike}")).await;
    let token = csrf_of(&page);
    let (status, _, _) = app
        .post_with(
            &c,
            &format!("/admin/units/{bike}/components/{link}/remove"),
            &[("csrf_token", &token), ("reason", "replaced in repair")],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.scalar(&format!("SELECT count(*) FROM unit_events WHERE kind = 'removed' AND note = 'replaced in repair' AND unit_id IN ({bike}, {battery})")),
        2
    );
    let (_, page, _) = app.get_with(&c, &format!("/staff/units/{bike}")).await;
    assert!(page.contains("removed: replaced in repair"), "{page}");
    let page = install(&app, &c, bike2, "SN1100").await;
    assert!(page.contains("Component installed."), "{page}");
    let (status, _, _) = app
        .post_with(
            &c,
            &format!("/admin/units/{bike}/components/{link}/remove"),
            &[("csrf_token", &token), ("reason", "again")],
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(app.scalar("SELECT count(*) FROM audit_log WHERE event IN ('component_installed', 'component_removed')"), 4);
}

#[tokio::test]
async fn a_components_file_installs_all_or_names_every_problem() {
    let app = spawn_app().await;
    let dir = temp_dir();
    let (bike, bike_serial) = ebike_serial(&app, 0);
    let (_, bike2_serial) = ebike_serial(&app, 1);
    let good = write(
        &dir,
        "components.csv",
        format!(
            "parent_gtin,parent_serial,component_gtin,component_serial,component_lot\n\
             {EBIKE},{bike_serial},{BATTERY},SN1300,\n\
             {EBIKE},{bike_serial},{BATTERY},,ABC124\n\
             {EBIKE},{bike2_serial},{BATTERY},sn1301,\n"
        )
        .as_bytes(),
    );
    let (ok, out, _) = run_import(&app, "components", &good);
    assert!(ok, "{out}");
    assert!(out.contains("Imported 3 components"), "{out}");
    assert_eq!(app.scalar(&format!("SELECT count(*) FROM unit_components WHERE parent_unit_id = {bike} AND removed_at IS NULL")), 2);
    assert_eq!(
        app.scalar("SELECT count(*) FROM unit_events WHERE kind = 'installed' AND actor = 'import:components.csv'"),
        5,
        "three on the parents, two on the component units"
    );
    let before = app.scalar("SELECT count(*) FROM unit_components");
    let bad = write(
        &dir,
        "bad.csv",
        format!(
            "parent_gtin,parent_serial,component_gtin,component_serial,component_lot\n\
             {EBIKE},{bike_serial},{BATTERY},SN1400,\n\
             {EBIKE},{bike2_serial},{BATTERY},SN1400,\n\
             {EBIKE},{bike_serial},{BATTERY},SN1300,\n\
             {EBIKE},VC00000000X,{BATTERY},SN1401,\n\
             {EBIKE},{bike_serial},{BATTERY},SN9999,\n\
             {EBIKE},{bike_serial},{BATTERY},,NOLOT\n\
             {EBIKE},{bike_serial},09506000999999,X1,\n\
             {EBIKE},{bike_serial},{BATTERY},SN1402,ABC123\n\
             {BATTERY},SN1300,{EBIKE},{bike_serial},\n"
        )
        .as_bytes(),
    );
    let (ok, _, report) = run_import(&app, "components", &bad);
    assert!(!ok);
    let report = report.unwrap();
    for expected in [
        "3,component_serial,the same component unit is already on line 2",
        "4,component_serial,SN1300 is already installed in",
        "5,parent_serial,there is no unit VC00000000X of this model",
        "6,component_serial,there is no unit SN9999 of the component model",
        "7,component_lot,the component model has no lot NOLOT",
        "8,component_gtin,no product model has GTIN 09506000999999",
        "9,component_lot,\"give the component's serial or its lot, not both",
        "10,component_serial,this would put the unit inside itself",
    ] {
        assert!(report.contains(expected), "{expected:?} in\n{report}");
    }
    assert_eq!(app.scalar("SELECT count(*) FROM unit_components"), before);
}
