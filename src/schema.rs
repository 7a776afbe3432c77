// @generated shape: kept identical to what `diesel print-schema` writes for
// the migrations; tests/api/schema.rs checks every table against the database.

diesel::table! {
    game_achievements (id) {
        id -> Int8,
        appid -> Int8,
        api_name -> Text,
        display_name -> Text,
        description -> Nullable<Text>,
        hidden -> Bool,
        icon_url -> Nullable<Text>,
        icon_gray_url -> Nullable<Text>,
        global_percent -> Nullable<Float8>,
        import_run_id -> Nullable<Int8>,
        points -> Int4,
        removed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    games (appid) {
        appid -> Int8,
        name -> Text,
        icon_hash -> Nullable<Text>,
        achievement_count -> Int4,
        schema_fetched_at -> Nullable<Timestamptz>,
        global_percentages_fetched_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        import_run_id -> Nullable<Int8>,
        stats_error -> Nullable<Text>,
        stats_failures -> Int4,
        stats_retry_after -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    library_entries (user_id, appid) {
        user_id -> Int8,
        appid -> Int8,
        playtime_minutes -> Int4,
        playtime_2weeks_minutes -> Int4,
        last_played_at -> Nullable<Timestamptz>,
        unlocked_count -> Int4,
        last_unlock_at -> Nullable<Timestamptz>,
        achievements_synced_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        synced_playtime_minutes -> Nullable<Int4>,
        sync_failures -> Int4,
        sync_error -> Nullable<Text>,
        retry_after -> Nullable<Timestamptz>,
        import_run_id -> Nullable<Int8>,
        points -> Int4,
        rarest_achievement_id -> Nullable<Int8>,
    }
}

diesel::table! {
    user_achievements (user_id, achievement_id) {
        user_id -> Int8,
        achievement_id -> Int8,
        unlocked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        username -> Text,
        email -> Nullable<Text>,
        email_verified_at -> Nullable<Timestamptz>,
        password_hash -> Nullable<Text>,
        role -> Text,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        pending_email -> Nullable<Text>,
        last_login_at -> Nullable<Timestamptz>,
        totp_secret_enc -> Nullable<Bytea>,
        totp_key_id -> Nullable<Text>,
        totp_enabled_at -> Nullable<Timestamptz>,
        totp_last_step -> Nullable<Int8>,
        totp_pending_enc -> Nullable<Bytea>,
        totp_pending_key_id -> Nullable<Text>,
        legacy_username -> Nullable<Text>,
        import_run_id -> Nullable<Int8>,
        username_key -> Nullable<Text>,
    }
}

diesel::table! {
    steam_accounts (user_id) {
        user_id -> Int8,
        steam_id -> Nullable<Int8>,
        api_key_enc -> Nullable<Bytea>,
        api_key_key_id -> Nullable<Text>,
        api_key_last4 -> Nullable<Text>,
        persona_name -> Nullable<Text>,
        avatar_url -> Nullable<Text>,
        linked_at -> Timestamptz,
        last_synced_at -> Nullable<Timestamptz>,
        last_sync_error -> Nullable<Text>,
        resync_requested_at -> Nullable<Timestamptz>,
        verified_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    steam_id_conflicts (id) {
        id -> Int8,
        steam_id -> Int8,
        holder_id -> Nullable<Int8>,
        claimant_id -> Nullable<Int8>,
        outcome -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    instance_secrets (name) {
        name -> Text,
        value_enc -> Bytea,
        key_id -> Text,
        last4 -> Text,
        updated_by -> Nullable<Int8>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    jobs (id) {
        id -> Int8,
        kind -> Text,
        user_id -> Nullable<Int8>,
        status -> Text,
        attempts -> Int4,
        run_after -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
        progress_done -> Int4,
        progress_total -> Int4,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        payload -> Jsonb,
        lease_token -> Nullable<Int8>,
    }
}

diesel::table! {
    backup_codes (id) {
        id -> Int8,
        user_id -> Int8,
        code_hash -> Bytea,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    user_sessions (id) {
        id -> Text,
        user_id -> Int8,
        remember -> Bool,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    known_devices (user_id, fingerprint) {
        user_id -> Int8,
        fingerprint -> Text,
        first_seen_at -> Timestamptz,
        last_seen_at -> Timestamptz,
    }
}

diesel::table! {
    email_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        purpose -> Text,
        token_hash -> Bytea,
        email -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        event_type -> Text,
        action -> Text,
        actor_id -> Nullable<Int8>,
        target_id -> Nullable<Int8>,
        target -> Nullable<Text>,
        success -> Bool,
        error -> Nullable<Text>,
        details -> Jsonb,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    image_blobs (sha256) {
        sha256 -> Text,
        content_type -> Text,
        byte_size -> Int4,
        width -> Int4,
        height -> Int4,
        storage_key -> Text,
        thumb_key -> Text,
        thumb_size -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    images (id) {
        id -> Int8,
        public_id -> Text,
        owner_id -> Nullable<Int8>,
        sha256 -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    custom_achievements (id) {
        id -> Int8,
        owner_id -> Int8,
        name -> Text,
        description -> Text,
        condition_type -> Text,
        condition -> Jsonb,
        needs_edit -> Bool,
        image_id -> Nullable<Int8>,
        imported_from -> Nullable<Int8>,
        progress_current -> Float8,
        progress_target -> Float8,
        met_at -> Nullable<Timestamptz>,
        evaluated_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        legacy_id -> Nullable<Text>,
        import_run_id -> Nullable<Int8>,
    }
}

diesel::table! {
    community_achievements (id) {
        id -> Int8,
        source_id -> Nullable<Int8>,
        creator_id -> Nullable<Int8>,
        name -> Text,
        description -> Text,
        condition_type -> Text,
        condition -> Jsonb,
        needs_edit -> Bool,
        image_id -> Nullable<Int8>,
        tries_count -> Int4,
        completions_count -> Int4,
        shared_at -> Timestamptz,
        is_active -> Bool,
        hidden_at -> Nullable<Timestamptz>,
        hidden_by -> Nullable<Int8>,
        legacy_id -> Nullable<Text>,
        import_run_id -> Nullable<Int8>,
    }
}

diesel::table! {
    import_runs (id) {
        id -> Int8,
        source -> Text,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        report -> Nullable<Jsonb>,
        rolled_back_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    user_scores (user_id) {
        user_id -> Int8,
        points -> Int8,
        unlocked -> Int8,
        perfect -> Int8,
        games -> Int8,
        computed_at -> Timestamptz,
    }
}

diesel::table! {
    instance_settings (id) {
        id -> Bool,
        ultra_rare_max -> Float8,
        rare_max -> Float8,
        uncommon_max -> Float8,
        updated_at -> Timestamptz,
        updated_by -> Nullable<Int8>,
        cache_epoch -> Int8,
    }
}

diesel::table! {
    user_versions (user_id) {
        user_id -> Int8,
        version -> Int8,
    }
}

diesel::table! {
    user_preferences (user_id) {
        user_id -> Int8,
        profile_public -> Bool,
        show_stats -> Bool,
        show_perfect -> Bool,
        show_library -> Bool,
        show_goals -> Bool,
        on_leaderboard -> Bool,
        weekly_digest -> Bool,
        unsubscribe_token -> Text,
        digest_sent_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    pins (id) {
        id -> Int8,
        user_id -> Int8,
        achievement_id -> Nullable<Int8>,
        goal_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(game_achievements -> games (appid));
diesel::table! {
    import_game_counts (run_id, appid) {
        run_id -> Int8,
        appid -> Int8,
        achievement_count -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    import_files (run_id, storage_key) {
        run_id -> Int8,
        storage_key -> Text,
    }
}

diesel::table! {
    import_undo (run_id, tbl, key) {
        run_id -> Int8,
        tbl -> Text,
        key -> Jsonb,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
    }
}

diesel::joinable!(library_entries -> games (appid));
diesel::table! {
    community_takers (community_id, user_id) {
        community_id -> Int8,
        user_id -> Int8,
        taken_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    removed_unlocks (user_id, achievement_id) {
        user_id -> Int8,
        achievement_id -> Int8,
        unlocked_at -> Nullable<Timestamptz>,
        removed_at -> Timestamptz,
    }
}

diesel::table! {
    removed_games (user_id, appid) {
        user_id -> Int8,
        appid -> Int8,
        playtime_minutes -> Int4,
        last_played_at -> Nullable<Timestamptz>,
        import_run_id -> Nullable<Int8>,
        removed_at -> Timestamptz,
    }
}

diesel::joinable!(library_entries -> users (user_id));
diesel::joinable!(user_achievements -> game_achievements (achievement_id));
diesel::joinable!(user_achievements -> users (user_id));
diesel::joinable!(user_sessions -> users (user_id));
diesel::joinable!(known_devices -> users (user_id));
diesel::joinable!(email_tokens -> users (user_id));
diesel::joinable!(backup_codes -> users (user_id));
diesel::joinable!(steam_accounts -> users (user_id));
diesel::joinable!(user_scores -> users (user_id));
diesel::joinable!(user_preferences -> users (user_id));
diesel::joinable!(jobs -> users (user_id));
diesel::joinable!(images -> image_blobs (sha256));
diesel::joinable!(custom_achievements -> images (image_id));
diesel::joinable!(custom_achievements -> users (owner_id));
diesel::joinable!(community_achievements -> images (image_id));

diesel::allow_tables_to_appear_in_same_query!(
    game_achievements,
    games,
    library_entries,
    user_achievements,
    users,
    user_sessions,
    known_devices,
    email_tokens,
    audit_log,
    backup_codes,
    steam_accounts,
    jobs,
    image_blobs,
    images,
    custom_achievements,
    community_achievements,
    community_takers,
    removed_unlocks,
    removed_games,
    import_runs,
    user_scores,
    instance_settings,
    user_preferences,
    pins,
    user_versions,
    steam_id_conflicts,
    instance_secrets,
);
