//! `autoscaling_group` on moto: TO BE WRITTEN.

pub const KIND: &str = "autoscaling_group";
