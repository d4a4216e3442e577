//! Webhook outbox delivery: signed POSTs with retries. (Completed by the tickets issue.)

use std::sync::Arc;

use crate::hub::Hub;

pub async fn run(hub: Arc<Hub>) {
    hub.shutdown.cancelled().await;
}
