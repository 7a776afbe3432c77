//! Database rows as structs, each with the queries that read and write it.

pub mod game;
pub mod history;
pub mod library;
pub mod score;
pub mod text_enum;
pub mod user;
