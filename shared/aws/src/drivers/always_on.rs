//! `always_on`: never switched; nothing to call.

use revscale_engine::config::Component;
use revscale_engine::drivers::AlwaysOn;
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients};

impl AwsKind for AlwaysOn {
    fn iam_actions(&self) -> &'static [&'static str] {
        &[]
    }
    async fn apply(&self, _: &Clients, _: &Apply<'_>) -> Result<(), DriverError> {
        Ok(())
    }
    async fn status(
        &self,
        _: &Clients,
        _: &Component,
        _: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        Ok(DriverStatus::Ready)
    }
    async fn observe(&self, _: &Clients, _: &Component) -> Result<Observed, DriverError> {
        Ok(Observed::at(&[ComponentState::Cold, ComponentState::Warm, ComponentState::Hot], "always on"))
    }
}
