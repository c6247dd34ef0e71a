//! `cloudformation_stack` on moto: TO BE WRITTEN.

pub const KIND: &str = "cloudformation_stack";
