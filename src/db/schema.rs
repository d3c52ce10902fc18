// @generated automatically by Diesel CLI.
// (Written in `diesel print-schema` form for migrations/2026-11-28-000001_foundation; regenerate
// with `diesel print-schema > src/db/schema.rs` after adding a migration.)

diesel::table! {
    locations (id) {
        id -> Int8,
        code -> Text,
        name -> Text,
        kind -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    lots (id) {
        id -> Int8,
        model_id -> Int8,
        code -> Text,
        production_date -> Date,
        expiry_date -> Nullable<Date>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    product_models (id) {
        id -> Int8,
        gtin -> Text,
        sku -> Text,
        name -> Text,
        brand -> Text,
        model_number -> Text,
        description -> Text,
        warranty_months -> Int4,
        warranty_start_rule -> Text,
        warranty_grace_days -> Int4,
        serials_case_sensitive -> Bool,
        serial_format -> Nullable<Text>,
        serial_hint -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    unit_events (id) {
        id -> Int8,
        unit_id -> Int8,
        kind -> Text,
        occurred_at -> Timestamptz,
        actor -> Text,
        location_id -> Nullable<Int8>,
        reference -> Nullable<Text>,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    units (id) {
        id -> Int8,
        model_id -> Int8,
        serial -> Text,
        serial_key -> Text,
        lot_id -> Nullable<Int8>,
        status -> Text,
        manufactured_on -> Nullable<Date>,
        location_id -> Nullable<Int8>,
        replaced_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(lots -> product_models (model_id));
diesel::joinable!(unit_events -> locations (location_id));
diesel::joinable!(unit_events -> units (unit_id));
diesel::joinable!(units -> locations (location_id));
diesel::joinable!(units -> lots (lot_id));
diesel::joinable!(units -> product_models (model_id));

diesel::allow_tables_to_appear_in_same_query!(locations, lots, product_models, unit_events, units,);
