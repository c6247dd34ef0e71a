//! `rds_instance` and `aurora_cluster` on moto: TO BE WRITTEN.

pub const INSTANCE_KIND: &str = "rds_instance";
pub const CLUSTER_KIND: &str = "aurora_cluster";
