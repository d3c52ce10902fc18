//! The demo catalogue: a few models with valid GTINs, lots, locations and about 3,900 units, so
//! a fresh portal answers lookups at once. Loaded set-based in one transaction.

use chrono::{Days, NaiveDate};
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::schema::{locations, lots, product_models};
use crate::domain::serial_format::SerialFormat;

#[derive(Insertable)]
#[diesel(table_name = product_models)]
struct NewModel<'a> {
    gtin: &'a str,
    sku: &'a str,
    name: &'a str,
    brand: &'a str,
    model_number: &'a str,
    description: &'a str,
    warranty_months: i32,
    warranty_start_rule: &'a str,
    warranty_grace_days: i32,
    serials_case_sensitive: bool,
    serial_format: Option<&'a str>,
    serial_hint: &'a str,
}

/// What the seed created, for the start-up banner and the README.
#[derive(Debug, Clone, Default)]
pub struct SeedSummary {
    pub created: bool,
    pub units: usize,
    pub examples: Vec<(String, String)>,
}

pub const BATTERY_GTIN: &str = "09506000134352";
pub const DRILL_GTIN: &str = "09521234543213";
pub const EBIKE_GTIN: &str = "09506000134369";
pub const SEAT_GTIN: &str = "09506000134376";

struct DemoLot {
    gtin: &'static str,
    code: &'static str,
    produced: NaiveDate,
    expiry: Option<NaiveDate>,
}

/// Seeds the demo catalogue unless its models are already there. `today` anchors the dates so
/// that the README's examples (active, expired, not yet started) stay true whenever it runs.
pub async fn seed_demo(
    conn: &mut AsyncPgConnection,
    today: NaiveDate,
) -> anyhow::Result<SeedSummary> {
    let exists: i64 = product_models::table
        .filter(product_models::gtin.eq_any([BATTERY_GTIN, DRILL_GTIN, EBIKE_GTIN, SEAT_GTIN]))
        .count()
        .get_result(conn)
        .await?;
    if exists > 0 {
        return Ok(SeedSummary::default());
    }
    let ago = |days: u64| today.checked_sub_days(Days::new(days)).unwrap_or(today);
    let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or(today);
    let models = [
        NewModel {
            gtin: BATTERY_GTIN,
            sku: "PC18-5",
            name: "PowerCell 18V 5.0 Ah battery pack",
            brand: "Arden Tools",
            model_number: "PC18-5",
            description: "Lithium-ion battery pack for the Arden 18V tool range.",
            warranty_months: 24,
            warranty_start_rule: "sale",
            warranty_grace_days: 90,
            serials_case_sensitive: false,
            serial_format: Some("SN####"),
            serial_hint: "on the label on the underside of the battery, next to the barcode",
        },
        NewModel {
            gtin: DRILL_GTIN,
            sku: "D18-BL",
            name: "D18 brushless cordless drill",
            brand: "Arden Tools",
            model_number: "D18-BL",
            description: "18V brushless drill driver.",
            warranty_months: 36,
            warranty_start_rule: "sale",
            warranty_grace_days: 90,
            serials_case_sensitive: false,
            serial_format: None,
            serial_hint: "on the silver plate on the left side of the motor housing",
        },
        NewModel {
            gtin: EBIKE_GTIN,
            sku: "CITY-E5",
            name: "City E5 electric bicycle",
            brand: "Voltra",
            model_number: "CITY-E5",
            description: "Step-through city e-bike with a 500 Wh frame battery.",
            warranty_months: 24,
            warranty_start_rule: "sale",
            warranty_grace_days: 90,
            serials_case_sensitive: false,
            serial_format: Some("VC########@"),
            serial_hint: "stamped under the bottom bracket, and on the sticker on the seat tube",
        },
        NewModel {
            gtin: SEAT_GTIN,
            sku: "KIS-0",
            name: "i-Size infant car seat",
            brand: "Kestrel",
            model_number: "KIS-0",
            description: "Rear-facing infant carrier for 40–87 cm.",
            warranty_months: 60,
            warranty_start_rule: "manufacture",
            warranty_grace_days: 0,
            serials_case_sensitive: true,
            serial_format: None,
            serial_hint: "on the white label under the seat shell; letters are case-sensitive",
        },
    ];
    let demo_lots = [
        DemoLot {
            gtin: BATTERY_GTIN,
            code: "ABC123",
            produced: ymd(2025, 1, 15),
            expiry: Some(ymd(2026, 12, 31)),
        },
        DemoLot {
            gtin: BATTERY_GTIN,
            code: "ABC124",
            produced: ago(200),
            expiry: ago(200).checked_add_days(Days::new(730)),
        },
        DemoLot {
            gtin: DRILL_GTIN,
            code: "D18-2201",
            produced: ago(1500),
            expiry: None,
        },
        DemoLot {
            gtin: EBIKE_GTIN,
            code: "VC-A",
            produced: ago(900),
            expiry: None,
        },
        DemoLot {
            gtin: EBIKE_GTIN,
            code: "VC-B",
            produced: ago(120),
            expiry: None,
        },
        DemoLot {
            gtin: EBIKE_GTIN,
            code: "VC-C",
            produced: ago(20),
            expiry: None,
        },
        DemoLot {
            gtin: SEAT_GTIN,
            code: "KIS-L1",
            produced: ago(300),
            expiry: ago(300).checked_add_days(Days::new(3650)),
        },
    ];

    // (gtin, serial, lot, status, location)
    let mut rows: Vec<(&str, String, &str, &str, &str)> = Vec::new();
    let sn = SerialFormat::parse("SN####")?;
    let vc = SerialFormat::parse("VC########@")?;
    let mut push = |gtin, serial: Option<String>, lot, status, loc| -> anyhow::Result<()> {
        rows.push((
            gtin,
            serial.ok_or_else(|| anyhow::anyhow!("demo serial out of range"))?,
            lot,
            status,
            loc,
        ));
        Ok(())
    };
    for n in 1..=2000u64 {
        let (lot, status, loc) = if n <= 1000 {
            ("ABC123", "shipped", "")
        } else {
            ("ABC124", "in_stock", "WH-EU")
        };
        push(BATTERY_GTIN, sn.render(n), lot, status, loc)?;
    }
    for n in 1..=500u64 {
        // The drill's older serials reuse the battery's numbering: the lookup must ask which.
        push(DRILL_GTIN, sn.render(n), "D18-2201", "shipped", "")?;
    }
    for n in 1..=1000u64 {
        let (lot, status, loc) = match n {
            1..=200 => ("VC-A", "shipped", ""),
            201..=700 => ("VC-B", "shipped", ""),
            _ => ("VC-C", "in_stock", "WH-EU"),
        };
        push(EBIKE_GTIN, vc.render(25_000_000 + n), lot, status, loc)?;
    }
    for n in 1..=400u64 {
        push(
            SEAT_GTIN,
            Some(format!("Ks{n:05}x")),
            "KIS-L1",
            if n <= 300 { "shipped" } else { "in_stock" },
            if n <= 300 { "" } else { "WH-US" },
        )?;
    }
    let units = rows.len();
    let examples = vec![
        (
            "SN0001 with GTIN 09506000134352 (lot ABC123)".to_owned(),
            "battery: warranty active".to_owned(),
        ),
        (
            "SN0001".to_owned(),
            "exists on the battery and the drill: asks which".to_owned(),
        ),
        ("SN1500".to_owned(), "battery in stock".to_owned()),
        (
            vc.render(25_000_001).unwrap_or_default(),
            "e-bike: warranty expired".to_owned(),
        ),
        (
            vc.render(25_000_300).unwrap_or_default(),
            "e-bike: warranty active".to_owned(),
        ),
        (
            vc.render(25_000_900).unwrap_or_default(),
            "e-bike: warranty not yet started".to_owned(),
        ),
        (
            "Ks00001x".to_owned(),
            "car seat (case-sensitive serial)".to_owned(),
        ),
    ];

    conn.transaction::<_, anyhow::Error, _>(async |conn| {
        {
            diesel::insert_into(locations::table)
                .values(&vec![
                    (locations::code.eq("FAC-1"), locations::name.eq("Main factory"), locations::kind.eq("factory")),
                    (locations::code.eq("WH-EU"), locations::name.eq("Central European warehouse"), locations::kind.eq("warehouse")),
                    (locations::code.eq("WH-US"), locations::name.eq("US distribution centre"), locations::kind.eq("warehouse")),
                ])
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            diesel::insert_into(product_models::table).values(&models[..]).execute(conn).await?;
            let model_ids: Vec<(String, i64)> = product_models::table
                .select((product_models::gtin, product_models::id))
                .load(conn)
                .await?;
            let id_of = |g: &str| model_ids.iter().find(|(gt, _)| gt == g).map(|(_, id)| *id).unwrap_or(0);
            let lot_rows: Vec<_> = demo_lots
                .iter()
                .map(|l| {
                    (
                        lots::model_id.eq(id_of(l.gtin)),
                        lots::code.eq(l.code),
                        lots::production_date.eq(l.produced),
                        lots::expiry_date.eq(l.expiry),
                    )
                })
                .collect();
            diesel::insert_into(lots::table).values(&lot_rows).execute(conn).await?;

            let col = |f: fn(&(&str, String, &str, &str, &str)) -> String| rows.iter().map(f).collect::<Vec<String>>();
            diesel::sql_query(
                "INSERT INTO units (model_id, serial, serial_key, lot_id, status, manufactured_on, location_id, created_by)
                 SELECT m.id, s.serial,
                        CASE WHEN m.serials_case_sensitive THEN s.serial ELSE upper(s.serial) END,
                        l.id, s.status, l.production_date, loc.id, 'demo-seed'
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                          AS s(gtin, serial, lot, status, location)
                 JOIN product_models m ON m.gtin = s.gtin
                 JOIN lots l ON l.model_id = m.id AND l.code = s.lot
                 LEFT JOIN locations loc ON loc.code = s.location",
            )
            .bind::<Array<Text>, _>(col(|r| r.0.to_owned()))
            .bind::<Array<Text>, _>(col(|r| r.1.clone()))
            .bind::<Array<Text>, _>(col(|r| r.2.to_owned()))
            .bind::<Array<Text>, _>(col(|r| r.3.to_owned()))
            .bind::<Array<Text>, _>(col(|r| r.4.to_owned()))
            .execute(conn)
            .await?;
            // The history after each unit's creation (which its row records): received into
            // stock, or shipped.
            diesel::sql_query(
                "INSERT INTO unit_events (unit_id, kind, occurred_at, actor, location_id, reference)
                 SELECT u.id, e.kind, (l.production_date + e.after)::timestamptz, 'demo-seed',
                        u.location_id,
                        'lot ' || l.code
                 FROM units u
                 JOIN lots l ON l.id = u.lot_id
                 JOIN product_models m ON m.id = u.model_id
                 JOIN (VALUES ('received', interval '2 days', 'in_stock'),
                              ('shipped', interval '5 days', 'shipped')) AS e(kind, after, for_status)
                   ON e.for_status = u.status
                 WHERE m.gtin = ANY($1)",
            )
            .bind::<Array<Text>, _>(vec![BATTERY_GTIN, DRILL_GTIN, EBIKE_GTIN, SEAT_GTIN])
            .execute(conn)
            .await?;
            Ok(())
        }
    })
    .await?;
    Ok(SeedSummary {
        created: true,
        units,
        examples,
    })
}

/// Demo accounts for a fresh portal: an admin, a staff member and a customer, with generated
/// passwords returned for printing once. Skipped when any account exists.
pub async fn seed_demo_users(
    conn: &mut AsyncPgConnection,
    password: fn() -> String,
) -> anyhow::Result<Vec<(String, String, String)>> {
    use super::accounts::Account;
    use crate::domain::account::{Email, Role};
    let any: i64 = super::schema::accounts::table
        .count()
        .get_result(conn)
        .await?;
    if any > 0 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (email, role) in [
        ("admin@demo.example", Role::Admin),
        ("staff@demo.example", Role::Staff),
        ("customer@demo.example", Role::Customer),
    ] {
        let pw = password();
        let hash = crate::passwords::hash(pw.clone()).await?;
        let email = Email::parse(email).map_err(|e| anyhow::anyhow!("{e}"))?;
        if Account::create(conn, &email, Some(&hash), role, true)
            .await?
            .is_some()
        {
            out.push((email.to_string(), role.to_string(), pw));
        }
    }
    Ok(out)
}
