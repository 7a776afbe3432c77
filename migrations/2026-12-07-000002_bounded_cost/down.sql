DROP TRIGGER users_shared ON users;
DROP TABLE community_takers;
