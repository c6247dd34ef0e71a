pub mod auth;
pub mod handler;
