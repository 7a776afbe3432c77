//! Integration tests: each one starts the real app on a random port against
//! its own PostgreSQL database and a real Redis.

mod account_security;
mod achievements;
mod admin;
mod admin_cli;
mod admin_ops;
mod browser;
mod community;
mod csrf;
mod dev_mailbox;
mod errors;
mod hardening;
mod headers;
mod health;
mod helpers;
mod home;
mod images;
mod import;
mod import_defects;
mod import_rules;
mod jobs;
mod login;
mod outages;
mod outbox;
mod pages;
mod register;
mod reset;
mod schema;
mod session_lifetime;
mod sessions;
mod steam;
mod structure;
mod sync_convergence;
mod tracker;
mod two_factor;
mod your_data;
