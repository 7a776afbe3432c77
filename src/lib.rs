//! Questline: a self-hostable Steam achievement tracker.
//!
//! `main.rs` only parses the command line; everything it runs lives here so
//! integration tests drive the same code.

pub mod account;
pub mod achievements;
pub mod admin;
pub mod admin_cli;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod body_budget;
pub mod cache;
pub mod client_ip;
pub mod crypto;
pub mod dashboard;
pub mod db;
pub mod email;
pub mod error;
pub mod health;
pub mod home;
pub mod images;
pub mod import;
pub mod infra;
pub mod jobs;
pub mod layout;
pub mod metrics;
pub mod middleware;
pub mod models;
pub mod names;
pub mod pagination;
pub mod pins;
pub mod profiles;
pub mod rarity;
pub mod ratelimit;
pub mod replica;
pub mod response;
pub mod rotate;
pub mod schema;
pub mod settings;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod steam;
pub mod steam_ids;
pub mod telemetry;
pub mod typed_session;
pub mod versions;
pub mod views;

pub use error::AppError;
pub use settings::Settings;
pub use startup::Application;
