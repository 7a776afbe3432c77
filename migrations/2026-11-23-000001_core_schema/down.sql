DROP TABLE user_achievements;
DROP TABLE library_entries;
DROP TABLE game_achievements;
DROP TABLE games;
DROP TABLE users;
DROP FUNCTION set_updated_at();
