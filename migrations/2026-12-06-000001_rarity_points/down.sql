DROP TABLE instance_settings;
DROP TABLE user_scores;
ALTER TABLE library_entries DROP COLUMN points, DROP COLUMN rarest_achievement_id;
ALTER TABLE game_achievements DROP COLUMN points;
