//! Printable label sheets: the codes on the page are rasterised here and read back with an
//! independent decoder (rxing, a port of ZXing), then compared with the unit's identifiers.

use recall_portal::domain::digital_link::{DigitalLink, unit_path};
use recall_portal::domain::gs1::ElementString;
use recall_portal::domain::{Gtin, SerialNumber};
use rxing::{BarcodeFormat, RXingResultMetadataType, RXingResultMetadataValue};

use crate::helpers::{TestApp, q, spawn_app};

const PW: &str = "Tangerine-Quartz-Velvet-94";
const BATTERY: &str = "09506000134352";
const DRILL: &str = "09521234543213";

async fn admin(app: &TestApp) -> reqwest::Client {
    app.create_user("admin@example.com", PW, "admin");
    let c = app.browser();
    app.login(&c, "admin@example.com", PW).await;
    c
}

// ---- reading the page ---------------------------------------------------------------------

/// Undoes askama's HTML escaping.
fn unescape(s: &str) -> String {
    s.replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// One label as printed: its two SVG codes and its lines of text.
struct PrintedLabel {
    qr: String,
    datamatrix: String,
    text: Vec<String>,
}

/// The `<svg class="code {class}">…</svg>` in a fragment.
fn svg_with_class(html: &str, class: &str) -> String {
    let marker = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" class="code {class}""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {class} code in {html}"));
    let end = html[start..].find("</svg>").unwrap() + start + "</svg>".len();
    html[start..end].to_owned()
}

fn labels_of(page: &str) -> Vec<PrintedLabel> {
    page.split(r#"<article class="label""#)
        .skip(1)
        .map(|chunk| {
            let chunk = chunk.split("</article>").next().unwrap();
            let text = chunk
                .split("<li>")
                .skip(1)
                .map(|li| unescape(li.split("</li>").next().unwrap()))
                .collect();
            PrintedLabel {
                qr: svg_with_class(chunk, "qr"),
                datamatrix: svg_with_class(chunk, "dm"),
                text,
            }
        })
        .collect()
}

/// The value of `attr="…"` in the opening tag at the start of `svg`.
fn attr<'a>(svg: &'a str, name: &str) -> &'a str {
    let key = format!(r#" {name}=""#);
    let start = svg
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {svg}"))
        + key.len();
    svg[start..].split('"').next().unwrap()
}

/// Paints the SVG the portal draws — a white viewBox of whole modules and one path of
/// `M x y h n v 1 h -n z` rectangles — into an 8-bit grey image, `PX` pixels per module, with
/// an extra light margin of `MARGIN` modules so the quiet zone never depends on the markup.
fn rasterise(svg: &str) -> (Vec<u8>, u32, u32) {
    const PX: usize = 4;
    const MARGIN: usize = 6;
    assert!(svg.contains(r##"<rect width=""##) && svg.contains(r##"fill="#fff""##));
    let view: Vec<usize> = attr(svg, "viewBox")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(&view[..2], &[0, 0]);
    let (cols, rows) = (view[2] + 2 * MARGIN, view[3] + 2 * MARGIN);
    let (w, h) = (cols * PX, rows * PX);
    let mut luma = vec![255u8; w * h];
    let d = attr(&svg[svg.find("<path").unwrap()..], "d");
    let mut painted = 0;
    for rect in d.split('z').filter(|r| !r.is_empty()) {
        // "M{x} {y}h{n}v1h-{n}"
        let rest = rect.strip_prefix('M').unwrap_or_else(|| panic!("{rect}"));
        let (xy, run) = rest.split_once('h').unwrap();
        let (x, y) = xy.split_once(' ').unwrap();
        let (n, tail) = run.split_once('v').unwrap();
        assert_eq!(tail, format!("1h-{n}"), "{rect}");
        let (x, y, n): (usize, usize, usize) =
            (x.parse().unwrap(), y.parse().unwrap(), n.parse().unwrap());
        assert!(
            x + n <= view[2] && y < view[3],
            "{rect} outside the viewBox"
        );
        for py in (y + MARGIN) * PX..(y + MARGIN + 1) * PX {
            for px in (x + MARGIN) * PX..(x + MARGIN + n) * PX {
                luma[py * w + px] = 0;
            }
        }
        painted += n;
    }
    assert!(painted > 20, "hardly any dark modules in {svg}");
    (luma, w as u32, h as u32)
}

/// Decodes one code; returns its text and the symbology identifier the reader reports.
fn decode(svg: &str, format: BarcodeFormat) -> (String, String) {
    let (luma, w, h) = rasterise(svg);
    let result = rxing::helpers::detect_in_luma(luma, w, h, Some(format))
        .unwrap_or_else(|e| panic!("{format:?} did not decode: {e:?}\n{svg}"));
    assert_eq!(*result.getBarcodeFormat(), format);
    let symbology = match result
        .getRXingResultMetadata()
        .get(&RXingResultMetadataType::SYMBOLOGY_IDENTIFIER)
    {
        Some(RXingResultMetadataValue::SymbologyIdentifier(s)) => s.clone(),
        _ => String::new(),
    };
    (result.getText().to_owned(), symbology)
}

/// What a scanner would send for the label's DataMatrix, parsed by the portal's own GS1 parser
/// (which also proves it is a GS1 DataMatrix: FNC1 first makes the reader say `]d2`).
fn read_datamatrix(l: &PrintedLabel) -> (String, ElementString) {
    let (text, symbology) = decode(&l.datamatrix, BarcodeFormat::DATA_MATRIX);
    assert_eq!(
        symbology, "]d2",
        "a GS1 DataMatrix starts with FNC1: {text:?}"
    );
    let parsed = ElementString::parse(&format!("{symbology}{text}"))
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    (text, parsed)
}

fn read_qr(l: &PrintedLabel) -> String {
    decode(&l.qr, BarcodeFormat::QR_CODE).0
}

fn gtin(s: &str) -> Gtin {
    Gtin::parse(s).unwrap()
}

fn next_link(page: &str) -> Option<String> {
    let at = page.find(r#"" rel="next">"#)?;
    let start = page[..at].rfind("href=\"").unwrap() + "href=\"".len();
    Some(unescape(&page[start..at]))
}

// ---- tests --------------------------------------------------------------------------------

#[tokio::test]
async fn a_lot_sheet_carries_codes_that_decode_to_each_unit() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    // The demo lot ABC123 of the battery: SN0001..SN1000, expiring 2026-12-31.
    let lot = app.scalar(&format!(
        "SELECT l.id FROM lots l JOIN product_models m ON m.id = l.model_id WHERE m.gtin = '{BATTERY}' AND l.code = 'ABC123'"
    ));
    let (status, page, _) = app.get_with(&c, &format!("/admin/labels?lot={lot}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Page 1 of 9") && page.contains("1000 label(s)"));
    assert!(page.contains(r#"<link rel="stylesheet" href="/static/labels.css">"#));
    assert!(
        !page.contains("style=") && !page.contains("<script") && !page.contains("<style"),
        "the CSP allows no inline styles or scripts"
    );
    let labels = labels_of(&page);
    assert_eq!(labels.len(), 120);

    for (i, n) in [(0usize, 1u32), (57, 58), (119, 120)] {
        let l = &labels[i];
        let serial = format!("SN{n:04}");
        assert_eq!(
            l.text,
            [
                format!("(01) {BATTERY}"),
                format!("(21) {serial}"),
                "(10) ABC123".to_owned(),
                "(17) 261231".to_owned(),
            ]
        );
        // The QR code is exactly the unit's Digital Link on this portal.
        assert_eq!(
            read_qr(l),
            format!(
                "{}{}",
                app.address,
                unit_path(&gtin(BATTERY), Some("ABC123"), &serial)
            )
        );
        // The DataMatrix is the GS1 element string: 01 GTIN, 17 expiry, 10 lot + GS, 21 serial.
        let (text, e) = read_datamatrix(l);
        assert_eq!(text, format!("01{BATTERY}1726123110ABC123\u{1d}21{serial}"));
        assert_eq!(e.gtin, Some(gtin(BATTERY)));
        assert_eq!(e.serial, Some(SerialNumber::parse(&serial).unwrap()));
        assert_eq!(e.lot.as_deref(), Some("ABC123"));
        assert_eq!(e.expiry_date, chrono::NaiveDate::from_ymd_opt(2026, 12, 31));
    }
    assert!(page.contains(
        r#"<p class="product">Arden Tools PowerCell 18V 5.0 Ah battery pack <span class="model-number">PC18-5</span></p>"#
    ));

    // Page by page to the end: 8 × 120 + 40, in serial order, with no link past the last.
    let mut link = next_link(&page).expect("a next-page link");
    assert_eq!(link, format!("/admin/labels?lot={lot}&page=2"));
    assert!(!page.contains(r#"rel="prev""#));
    let mut seen = 120;
    for n in 2..=9 {
        let (status, page, _) = app.get_with(&c, &link).await;
        assert_eq!(status, 200);
        assert!(page.contains(&format!("Page {n} of 9")) && page.contains(r#"rel="prev""#));
        let labels = labels_of(&page);
        assert_eq!(
            labels[0].text[1],
            format!("(21) SN{:04}", seen + 1),
            "page {n} starts after the last"
        );
        seen += labels.len();
        match next_link(&page) {
            Some(l) => link = l,
            None => {
                assert_eq!(n, 9);
                assert_eq!(labels.len(), 40);
                // The last label of the lot decodes too.
                let (_, e) = read_datamatrix(&labels[39]);
                assert_eq!(e.serial.unwrap().as_str(), "SN1000");
            }
        }
    }
    assert_eq!(seen, 1000);
    let (status, body, _) = app
        .get_with(&c, &format!("/admin/labels?lot={lot}&page=10"))
        .await;
    assert_eq!(status, 404);
    assert!(body.contains("there is no page 10"));
}

#[tokio::test]
async fn chosen_units_get_labels_and_unknown_serials_are_listed() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let drill = app.scalar(&format!(
        "SELECT id FROM product_models WHERE gtin = '{DRILL}'"
    ));
    // A unit with no lot and a serial full of characters that need escaping and encoding.
    let odd = r#"A/B"1%<x>&'"#;
    app.sql(&format!(
        "INSERT INTO units (model_id, serial, serial_key, status) VALUES ({drill}, '{0}', upper('{0}'), 'manufactured')",
        odd.replace('\'', "''")
    ));
    let typed = format!("sn0002, SN0001\nNOPE-1 {odd}\r\nbad#serial SN0001");
    let path = format!("/admin/labels?model={drill}&serials={}", q(&typed));
    let (status, page, _) = app.get_with(&c, &path).await;
    assert_eq!(status, 200, "{page}");
    // Unknown and invalid entries are named above the sheet; nothing is printed for them.
    let notice = &page[..page.find(r#"<div class="sheet">"#).unwrap()];
    assert!(notice.contains(
        "1 serial number(s) are not recorded for Arden Tools D18 brushless cordless drill"
    ));
    assert!(notice.contains("<li><code>NOPE-1</code></li>"), "{notice}");
    assert!(notice.contains("<code>bad#serial</code>: A serial number cannot contain “#”"));
    assert!(!page.contains("<x>"), "typed text is escaped");

    let labels = labels_of(&page);
    let serials: Vec<&str> = labels.iter().map(|l| l.text[1].as_str()).collect();
    // In the order typed, each once, lower case matched on this case-insensitive model.
    assert_eq!(
        serials,
        ["(21) SN0002", "(21) SN0001", &format!("(21) {odd}")]
    );

    let (text, e) = read_datamatrix(&labels[0]);
    assert_eq!(text, format!("01{DRILL}10D18-2201\u{1d}21SN0002"));
    assert_eq!(e.expiry_date, None);
    assert_eq!(labels[0].text[3], "Expiry: none");
    assert_eq!(
        read_qr(&labels[0]),
        format!("{}/01/{DRILL}/10/D18-2201/21/SN0002", app.address)
    );

    // The odd serial survives both codes exactly.
    let odd_label = &labels[2];
    assert_eq!(odd_label.text[2..], ["Lot: none", "Expiry: none"]);
    let (text, e) = read_datamatrix(odd_label);
    assert_eq!(text, format!("01{DRILL}21{odd}"));
    assert_eq!(e.serial.unwrap().as_str(), odd);
    assert_eq!((e.lot, e.expiry_date), (None, None));
    let url = read_qr(odd_label);
    assert_eq!(
        url,
        format!("{}{}", app.address, unit_path(&gtin(DRILL), None, odd))
    );
    let link = DigitalLink::parse(&url).unwrap();
    assert_eq!(link.serial.unwrap().as_str(), odd);
    assert_eq!(link.gtin, gtin(DRILL));
    // ...and the link leads to that unit's lookup.
    let path_only = url.strip_prefix(&app.address).unwrap();
    let (status, _, location) = app.get_with(&c, path_only).await;
    assert_eq!(status, 307);
    assert!(location.unwrap().starts_with("/check?"));

    // Only unknown serials: the message and no sheet, not an error.
    let (status, page, _) = app
        .get_with(&c, &format!("/admin/labels?model={drill}&serials=NOPE-2"))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("<code>NOPE-2</code>") && labels_of(&page).is_empty());
}

#[tokio::test]
async fn the_chooser_is_linked_from_the_catalogue_and_bad_requests_get_clear_pages() {
    let app = spawn_app().await;
    let c = admin(&app).await;
    let battery = app.scalar(&format!(
        "SELECT id FROM product_models WHERE gtin = '{BATTERY}'"
    ));
    let lot = app.scalar(&format!(
        "SELECT id FROM lots WHERE model_id = {battery} AND code = 'ABC123'"
    ));
    let (_, catalogue, _) = app.get_with(&c, "/admin/catalogue").await;
    assert!(catalogue.contains(r#"href="/admin/labels""#));
    let (_, model_page, _) = app.get_with(&c, &format!("/admin/models/{battery}")).await;
    assert!(model_page.contains(&format!(r#"href="/admin/labels?lot={lot}""#)));
    assert!(model_page.contains(&format!(r#"href="/admin/labels?model={battery}""#)));

    let (status, chooser, _) = app.get_with(&c, "/admin/labels").await;
    assert_eq!(status, 200);
    assert!(chooser.contains(&format!(
        r#"<option value="{lot}">ABC123 (made 2025-01-15)</option>"#
    )));
    assert!(chooser.contains(r#"<textarea id="serials" name="serials""#));
    let (status, chooser, _) = app
        .get_with(&c, &format!("/admin/labels?model={battery}"))
        .await;
    assert_eq!(status, 200);
    assert!(chooser.contains(&format!(r#"<option value="{battery}" selected>"#)));

    // The stylesheet the sheet links is served and has the print rules.
    let css = app.get("/static/labels.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let css = css.text().await.unwrap();
    assert!(css.contains("@media print") && css.contains("break-inside: avoid"));
    assert!(css.contains("size: A4"));

    // An empty or overlong list re-shows the form with the message and what was typed.
    let (status, body, _) = app
        .get_with(&c, &format!("/admin/labels?model={battery}&serials=+%0A+"))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains(r#"id="serials-error">Enter at least one serial number."#));
    let many: Vec<String> = (1..=501).map(|n| format!("SN{n:04}")).collect();
    let (status, body, _) = app
        .get_with(
            &c,
            &format!("/admin/labels?model={battery}&serials={}", many.join(",")),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("at most 500 serial numbers") && body.contains("SN0501</textarea>"));

    for (path, want) in [
        ("/admin/labels?lot=999999".to_owned(), 404),
        ("/admin/labels?model=999999&serials=SN0001".to_owned(), 404),
        ("/admin/labels?model=999999".to_owned(), 404),
        ("/admin/labels?lot=abc".to_owned(), 400),
        ("/admin/labels?lot=-1".to_owned(), 400),
        ("/admin/labels?lot=".to_owned(), 400),
        (format!("/admin/labels?lot={lot}&page=0"), 400),
        (format!("/admin/labels?lot={lot}&page=two"), 400),
        (
            format!("/admin/labels?lot={lot}&page=99999999999999999999999"),
            400,
        ),
        (format!("/admin/labels?lot={lot}&model={battery}"), 400),
        ("/admin/labels?serials=SN0001".to_owned(), 400),
        ("/admin/labels?model=x&serials=SN0001".to_owned(), 400),
        ("/admin/labels?lot=%FF%00".to_owned(), 400),
    ] {
        let (status, body, _) = app.get_with(&c, &path).await;
        assert_eq!(status, want, "{path}: {body}");
        match want {
            404 => assert!(body.contains("No such"), "{path}"),
            400 => assert!(body.contains("could not be understood"), "{path}: {body}"),
            _ => {}
        }
    }

    // A lot without units: one empty page, not an error.
    app.sql(&format!(
        "INSERT INTO lots (model_id, code, production_date) VALUES ({battery}, 'EMPTY-1', current_date)"
    ));
    let empty = app.scalar("SELECT id FROM lots WHERE code = 'EMPTY-1'");
    let (status, body, _) = app
        .get_with(&c, &format!("/admin/labels?lot={empty}"))
        .await;
    assert_eq!(status, 200);
    assert!(body.contains("0 label(s)") && body.contains("There are no units to label yet"));

    // A unit whose lot expires beyond what a GS1 date can carry gets a message, not a 500.
    app.sql(&format!(
        "INSERT INTO lots (model_id, code, production_date, expiry_date) VALUES ({battery}, 'FAR-1', current_date, '2150-01-01')"
    ));
    app.sql(&format!(
        "INSERT INTO units (model_id, serial, serial_key, lot_id, status)
         SELECT {battery}, 'SN9999', 'SN9999', id, 'manufactured' FROM lots WHERE code = 'FAR-1'"
    ));
    let far = app.scalar("SELECT id FROM lots WHERE code = 'FAR-1'");
    let (status, body, _) = app.get_with(&c, &format!("/admin/labels?lot={far}")).await;
    assert_eq!(status, 200);
    assert!(body.contains("No codes for this unit: the expiry date 2150-01-01 cannot be printed"));
    assert!(!body.contains("Expiry: none") && !body.contains("<svg"));
}

#[tokio::test]
async fn only_admins_print_labels() {
    let app = spawn_app().await;
    app.create_user("staff@example.com", PW, "staff");
    app.create_user("cust@example.com", PW, "customer");
    let path = "/admin/labels?lot=1";
    let (status, _, location) = app.get_with(&app.browser(), path).await;
    assert_eq!(
        (status, location),
        (303, Some(format!("/login?next={}", q(path))))
    );
    for email in ["staff@example.com", "cust@example.com"] {
        let c = app.browser();
        app.login(&c, email, PW).await;
        let (status, body, _) = app.get_with(&c, path).await;
        assert_eq!(status, 403, "{email}");
        assert!(body.contains("Not allowed") && !body.contains("class=\"label\""));
    }
}
