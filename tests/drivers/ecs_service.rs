//! `ecs_service` on moto: TO BE WRITTEN.

pub const KIND: &str = "ecs_service";
