pub mod auth;
pub mod context;
pub mod handler;
mod routes;
