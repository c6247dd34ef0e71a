//! `lambda_provisioned_concurrency` on moto: TO BE WRITTEN.

pub const KIND: &str = "lambda_provisioned_concurrency";
