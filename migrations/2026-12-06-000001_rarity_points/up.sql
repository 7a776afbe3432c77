-- Points per achievement follow Steam's global percentage by themselves:
-- Exophase's formula, (sqrt(100 / percent) - 1) * 1000 + 50, with the
-- percentage floored at 0.01 (Steam reports 0.0 for achievements nobody
-- has) and unknown rarity worth the base 50.
ALTER TABLE game_achievements
    ADD COLUMN points INT4 GENERATED ALWAYS AS (
        CASE WHEN global_percent IS NULL THEN 50
             ELSE round((sqrt(100.0 / greatest(global_percent, 0.01)) - 1) * 1000 + 50)::int4
        END) STORED;

-- Each library entry keeps the points of its unlocks and its rarest unlock
-- (no foreign key: a schema refresh may replace the row; a stale id simply
-- finds nothing).
ALTER TABLE library_entries
    ADD COLUMN points INT4 NOT NULL DEFAULT 0,
    ADD COLUMN rarest_achievement_id INT8;
CREATE INDEX library_entries_user_points_idx ON library_entries (user_id, points DESC);

-- Per-user totals, for leaderboards and profiles without summing libraries.
CREATE TABLE user_scores (
    user_id     INT8 PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    points      INT8 NOT NULL DEFAULT 0,
    unlocked    INT8 NOT NULL DEFAULT 0,
    perfect     INT8 NOT NULL DEFAULT 0,
    games       INT8 NOT NULL DEFAULT 0,
    computed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX user_scores_points ON user_scores (points DESC, user_id);
CREATE INDEX user_scores_perfect ON user_scores (perfect DESC, user_id);
CREATE INDEX user_scores_unlocked ON user_scores (unlocked DESC, user_id);

-- The instance's own settings an admin may change: one row.
CREATE TABLE instance_settings (
    id              BOOL PRIMARY KEY DEFAULT TRUE CHECK (id),
    ultra_rare_max  FLOAT8 NOT NULL DEFAULT 5,
    rare_max        FLOAT8 NOT NULL DEFAULT 20,
    uncommon_max    FLOAT8 NOT NULL DEFAULT 50,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by      INT8 REFERENCES users (id) ON DELETE SET NULL,
    CHECK (0 < ultra_rare_max AND ultra_rare_max < rare_max AND rare_max < uncommon_max AND uncommon_max < 100)
);
INSERT INTO instance_settings DEFAULT VALUES;

-- Existing data gets its points now.
UPDATE library_entries le SET points = s.points, rarest_achievement_id = s.rarest
FROM (
    SELECT ua.user_id, ga.appid, sum(ga.points)::int4 AS points,
           (array_agg(ga.id ORDER BY ga.global_percent ASC NULLS LAST, ga.id))[1] AS rarest
    FROM user_achievements ua JOIN game_achievements ga ON ga.id = ua.achievement_id
    GROUP BY ua.user_id, ga.appid
) s
WHERE le.user_id = s.user_id AND le.appid = s.appid;

INSERT INTO user_scores (user_id, points, unlocked, perfect, games)
SELECT u.id, coalesce(sum(le.points), 0), coalesce(sum(le.unlocked_count), 0),
       count(le.appid) FILTER (WHERE g.achievement_count > 0 AND le.unlocked_count >= g.achievement_count),
       count(le.appid)
FROM users u
LEFT JOIN library_entries le ON le.user_id = u.id
LEFT JOIN games g ON g.appid = le.appid
GROUP BY u.id;
