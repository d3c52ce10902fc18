// @generated automatically by Diesel CLI.
// (Written in `diesel print-schema` form for the migrations in migrations/; regenerate
// with `diesel print-schema > src/db/schema.rs` after adding a migration.)

diesel::table! {
    account_tokens (token_hash) {
        token_hash -> Bytea,
        account_id -> Int8,
        purpose -> Text,
        new_email -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    accounts (id) {
        id -> Int8,
        email -> Text,
        email_verified_at -> Nullable<Timestamptz>,
        password_hash -> Nullable<Text>,
        role -> Text,
        display_name -> Text,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    api_idempotency_keys (token_id, key) {
        token_id -> Int8,
        key -> Text,
        request_hash -> Bytea,
        status -> Nullable<Int2>,
        body -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_token_reveals (token_id) {
        token_id -> Int8,
        session_hash -> Bytea,
        nonce -> Bytea,
        sealed -> Bytea,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Int8,
        token_hash -> Bytea,
        name -> Text,
        scopes -> Array<Nullable<Text>>,
        created_by -> Int8,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        revoked_by -> Nullable<Int8>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        event -> Text,
        actor_id -> Nullable<Int8>,
        subject_id -> Nullable<Int8>,
        email -> Nullable<Text>,
        ip -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

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
        warranty_extra_months -> Int4,
        warranty_extended_to -> Nullable<Date>,
    }
}

diesel::table! {
    model_pictures (model_id) {
        model_id -> Int8,
        content_type -> Text,
        bytes -> Bytea,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        kind -> Text,
        to_address -> Text,
        subject -> Text,
        body_text -> Nullable<Text>,
        body_html -> Nullable<Text>,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        template_id -> Nullable<Int8>,
        fill -> Nullable<Jsonb>,
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
    sessions (token_hash) {
        token_hash -> Bytea,
        account_id -> Nullable<Int8>,
        csrf_token -> Text,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
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
        created_by -> Text,
        sold_on -> Nullable<Date>,
        purchased_on -> Nullable<Date>,
        warranty_extra_months -> Int4,
        warranty_extended_to -> Nullable<Date>,
        inherited_from -> Nullable<Date>,
        inherited_end -> Nullable<Date>,
    }
}

diesel::table! {
    import_jobs (id) {
        id -> Int8,
        kind -> Text,
        count_id -> Nullable<Int8>,
        filename -> Text,
        status -> Text,
        total_bytes -> Int8,
        bytes_read -> Int8,
        rows_read -> Int8,
        inserted -> Int8,
        error_count -> Int8,
        report -> Nullable<Text>,
        message -> Nullable<Text>,
        created_by -> Int8,
        created_at -> Timestamptz,
        heartbeat_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sale_units (id) {
        id -> Int8,
        sale_id -> Int8,
        unit_id -> Int8,
        linked_at -> Timestamptz,
        linked_by -> Text,
        unlinked_at -> Nullable<Timestamptz>,
        unlinked_by -> Nullable<Text>,
        unlink_reason -> Nullable<Text>,
    }
}

diesel::table! {
    sales (id) {
        id -> Int8,
        order_ref -> Text,
        channel -> Text,
        sold_on -> Date,
        customer_email -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    scan_batch_items (id) {
        id -> Int8,
        batch_id -> Int8,
        raw -> Text,
        unit_id -> Nullable<Int8>,
        problem -> Nullable<Text>,
        scanned_at -> Timestamptz,
    }
}

diesel::table! {
    scan_batches (id) {
        id -> Int8,
        kind -> Text,
        location_id -> Int8,
        reference -> Nullable<Text>,
        status -> Text,
        account_id -> Int8,
        created_at -> Timestamptz,
        committed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    stock_count_lines (count_id, category, serial) {
        count_id -> Int8,
        category -> Text,
        unit_id -> Nullable<Int8>,
        serial -> Text,
        detail -> Nullable<Text>,
        model_id -> Nullable<Int8>,
    }
}

diesel::table! {
    stock_count_scans (count_id, serial_key) {
        count_id -> Int8,
        model_id -> Nullable<Int8>,
        serial_key -> Text,
        serial -> Text,
    }
}

diesel::table! {
    stock_counts (id) {
        id -> Int8,
        location_id -> Int8,
        status -> Text,
        opened_by -> Int8,
        opened_at -> Timestamptz,
        reconciled_at -> Nullable<Timestamptz>,
        applied_at -> Nullable<Timestamptz>,
        applied_by -> Nullable<Int8>,
        scan_count -> Int8,
    }
}

diesel::table! {
    unit_components (id) {
        id -> Int8,
        parent_unit_id -> Int8,
        component_unit_id -> Nullable<Int8>,
        component_lot_id -> Nullable<Int8>,
        installed_at -> Timestamptz,
        installed_by -> Text,
        removed_at -> Nullable<Timestamptz>,
        removed_by -> Nullable<Text>,
        remove_reason -> Nullable<Text>,
    }
}

diesel::table! {
    claims (id) {
        id -> Int8,
        number -> Text,
        unit_id -> Int8,
        registration_id -> Nullable<Int8>,
        account_id -> Int8,
        status -> Text,
        category -> Text,
        description -> Text,
        noticed_on -> Date,
        contact_preference -> Text,
        contact_phone -> Nullable<Text>,
        flag_never_sold -> Bool,
        flag_not_owner -> Bool,
        flag_out_of_warranty -> Bool,
        flag_open_recall -> Bool,
        eta -> Nullable<Date>,
        assignee_id -> Nullable<Int8>,
        rma_number -> Nullable<Text>,
        return_instructions -> Nullable<Text>,
        outcome_note -> Nullable<Text>,
        replacement_unit_id -> Nullable<Int8>,
        filed_at -> Timestamptz,
        status_since -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    claim_events (id) {
        id -> Int8,
        claim_id -> Int8,
        at -> Timestamptz,
        actor_id -> Nullable<Int8>,
        actor_role -> Text,
        kind -> Text,
        public -> Bool,
        from_status -> Nullable<Text>,
        to_status -> Nullable<Text>,
        note -> Nullable<Text>,
        eta -> Nullable<Date>,
    }
}

diesel::table! {
    claim_photos (id) {
        id -> Int8,
        claim_id -> Int8,
        file -> Text,
        media_type -> Text,
        bytes -> Int4,
        added_at -> Timestamptz,
    }
}

diesel::table! {
    claim_service_levels (status) {
        status -> Text,
        target_days -> Int4,
    }
}

diesel::table! {
    recall_campaigns (id) {
        id -> Int8,
        code -> Text,
        status -> Text,
        title -> Text,
        hazard -> Text,
        what_to_do -> Text,
        sold_where -> Text,
        contact -> Text,
        remedy_repair -> Bool,
        remedy_replace -> Bool,
        remedy_refund -> Bool,
        remedy_reason -> Text,
        remedy_available -> Bool,
        second_notice_days -> Int4,
        created_by -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        launched_at -> Nullable<Timestamptz>,
        launched_by -> Nullable<Int8>,
        closed_at -> Nullable<Timestamptz>,
        notice_template_id -> Nullable<Int8>,
        second_template_id -> Nullable<Int8>,
    }
}

diesel::table! {
    recall_units (unit_id, campaign_id) {
        campaign_id -> Int8,
        unit_id -> Int8,
        lot_id -> Nullable<Int8>,
        state -> Text,
        notice_id -> Nullable<Int8>,
        acknowledged_at -> Nullable<Timestamptz>,
        remedied_on -> Nullable<Date>,
        remedied_by -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    registration_drafts (id) {
        id -> Int8,
        token_hash -> Bytea,
        unit_id -> Int8,
        purchased_on -> Date,
        place_of_purchase -> Text,
        marketing_consent -> Bool,
        reminder_wanted -> Bool,
        proof_file -> Nullable<Text>,
        proof_type -> Nullable<Text>,
        proof_bytes -> Nullable<Int4>,
        browser_hash -> Bytea,
        account_id -> Nullable<Int8>,
        completed_by -> Nullable<Int8>,
        outcome -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    registrations (id) {
        id -> Int8,
        unit_id -> Int8,
        account_id -> Int8,
        status -> Text,
        purchased_on -> Date,
        place_of_purchase -> Text,
        marketing_consent -> Bool,
        reminder_wanted -> Bool,
        reminder_sent_at -> Nullable<Timestamptz>,
        not_sold_flag -> Bool,
        contact_email -> Text,
        contact_retained -> Bool,
        retained_until -> Nullable<Date>,
        proof_file -> Nullable<Text>,
        proof_type -> Nullable<Text>,
        proof_bytes -> Nullable<Int4>,
        created_at -> Timestamptz,
        decided_at -> Nullable<Timestamptz>,
        decided_by -> Nullable<Int8>,
        decision_note -> Nullable<Text>,
        ended_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    warranty_extensions (id) {
        id -> Int8,
        unit_id -> Nullable<Int8>,
        lot_id -> Nullable<Int8>,
        extra_months -> Nullable<Int4>,
        ends_on -> Nullable<Date>,
        reason -> Text,
        created_by -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(account_tokens -> accounts (account_id));
diesel::joinable!(api_idempotency_keys -> api_tokens (token_id));
diesel::joinable!(api_token_reveals -> api_tokens (token_id));
diesel::joinable!(lots -> product_models (model_id));
diesel::joinable!(sessions -> accounts (account_id));
diesel::joinable!(unit_events -> locations (location_id));
diesel::joinable!(unit_events -> units (unit_id));
diesel::joinable!(units -> locations (location_id));
diesel::joinable!(units -> lots (lot_id));
diesel::joinable!(units -> product_models (model_id));
diesel::joinable!(registrations -> units (unit_id));
diesel::joinable!(model_pictures -> product_models (model_id));
diesel::joinable!(sale_units -> sales (sale_id));
diesel::joinable!(sale_units -> units (unit_id));
diesel::joinable!(scan_batch_items -> scan_batches (batch_id));
diesel::joinable!(scan_batches -> locations (location_id));
diesel::joinable!(stock_counts -> locations (location_id));
diesel::joinable!(unit_components -> lots (component_lot_id));

diesel::allow_tables_to_appear_in_same_query!(
    account_tokens,
    accounts,
    api_idempotency_keys,
    api_token_reveals,
    api_tokens,
    audit_log,
    claim_events,
    claim_photos,
    claim_service_levels,
    claims,
    import_jobs,
    locations,
    lots,
    model_pictures,
    outbox,
    product_models,
    recall_campaigns,
    recall_units,
    registration_drafts,
    registrations,
    sale_units,
    sales,
    scan_batch_items,
    scan_batches,
    sessions,
    stock_count_lines,
    stock_count_scans,
    stock_counts,
    unit_components,
    unit_events,
    units,
    warranty_extensions,
);
