-- Unlocks move their user's version like every other table a kept page
-- reads. They were left out on the belief that every unlock write also
-- writes the user's score row; a change that nets no points (an unlock of
-- a 0-point achievement, one added and one removed) writes none, and the
-- game, stats and dashboard pages stayed stale until their TTL.
-- Statement triggers with transition tables: one note per user per
-- statement, whatever the rows (the bulk import pauses the insert trigger
-- while it holds the table; its accounts' library rows note them).
CREATE TRIGGER user_achievements_versions_ins AFTER INSERT ON user_achievements
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER user_achievements_versions_upd AFTER UPDATE ON user_achievements
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER user_achievements_versions_del AFTER DELETE ON user_achievements
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
