DROP TABLE jobs;
DROP TABLE steam_accounts;
