pub mod auth;
pub mod handler;
mod routes;
