//! The service desk: finding a unit and reading its whole history.

use crate::helpers::spawn_app;

const PW: &str = "Tangerine-Quartz-Velvet-94";

#[tokio::test]
async fn staff_find_a_unit_by_any_input_and_read_its_history() {
    let app = spawn_app().await;
    app.create_user("desk@example.com", PW, "staff");
    let c = app.browser();
    app.login(&c, "desk@example.com", PW).await;

    let (status, _, location) = app.get_with(&c, "/staff/units?serial=sn1500").await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    let id = app.scalar("SELECT u.id FROM units u JOIN product_models m ON m.id = u.model_id WHERE u.serial = 'SN1500' AND m.gtin = '09506000134352'");
    assert_eq!(location, format!("/staff/units/{id}"));
    let (status, page, _) = app.get_with(&c, &location).await;
    assert_eq!(status, 200);
    for text in [
        "<code>SN1500</code>",
        "PowerCell",
        "<code>ABC124</code>",
        "<code>WH-EU</code>",
        "in_stock",
        "by demo-seed",
        "<strong>received</strong>",
    ] {
        assert!(page.contains(text), "{text}: {page}");
    }
    // Internal data is for staff: the public page of the same unit shows none of it.
    let (_, public) = app.page("/check?serial=SN1500").await;
    assert!(!public.contains("WH-EU") && !public.contains("demo-seed"));

    // A scanned code works too; a serial on two models lists both.
    let (status, _, _) = app
        .get_with(&c, "/staff/units?serial=%5Dd2010952123454321321SN0001")
        .await;
    assert_eq!(status, 303);
    let (status, page, _) = app.get_with(&c, "/staff/units?serial=SN0001").await;
    assert_eq!(status, 200);
    assert!(page.contains("PowerCell") && page.contains("D18 brushless"));
    let (status, page, _) = app.get_with(&c, "/staff/units?serial=A%231").await;
    assert_eq!(status, 400);
    assert!(page.contains(r#"id="serial-error""#));
    let (status, page, _) = app.get_with(&c, "/staff/units?serial=NOPE1").await;
    assert_eq!(status, 200);
    assert!(page.contains("No unit has this serial number"));
    assert_eq!(app.get_with(&c, "/staff/units/999999999").await.0, 404);
}
