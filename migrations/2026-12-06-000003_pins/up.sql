-- Achievements and goals a user tracks on the dashboard.
CREATE TABLE pins (
    id              BIGSERIAL PRIMARY KEY,
    user_id         INT8 NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    achievement_id  INT8 REFERENCES game_achievements (id) ON DELETE CASCADE,
    goal_id         INT8 REFERENCES custom_achievements (id) ON DELETE CASCADE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((achievement_id IS NULL) <> (goal_id IS NULL))
);
CREATE UNIQUE INDEX pins_user_achievement ON pins (user_id, achievement_id) WHERE achievement_id IS NOT NULL;
CREATE UNIQUE INDEX pins_user_goal ON pins (user_id, goal_id) WHERE goal_id IS NOT NULL;
CREATE INDEX pins_achievement ON pins (achievement_id) WHERE achievement_id IS NOT NULL;
CREATE INDEX pins_goal ON pins (goal_id) WHERE goal_id IS NOT NULL;
