//! The DynamoDB store against moto: the store contract every `Store` passes (the
//! in-memory one too).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use revscale_aws::dynamo::DynamoStore;
use revscale_integration_tests::{sdk, table};
use revscale_test_support::store_contract::*;

async fn store() -> DynamoStore {
    let sdk = sdk().await;
    let name = table(&sdk).await;
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), name)
}

#[tokio::test]
async fn a_days_snapshot_is_written_once_in_dynamodb_and_a_replay_changes_nothing() {
    a_days_snapshot_is_written_once_and_a_replay_changes_nothing(&store().await).await;
}

#[tokio::test]
async fn dynamodb_history_is_a_bounded_query_of_revenue_days_with_their_cost() {
    history_is_a_bounded_query_of_revenue_days_with_their_cost_when_collected(&store().await).await;
}

#[tokio::test]
async fn a_backfilled_snapshot_never_overwrites_a_collected_day_in_dynamodb_and_history_carries_its_mark() {
    a_backfilled_snapshot_never_overwrites_a_collected_day_and_history_carries_its_mark(&store().await).await;
}

#[tokio::test]
async fn dynamodb_state_writes_are_versioned_and_a_stale_writer_gets_a_conflict() {
    state_writes_are_versioned_and_a_stale_writer_gets_a_conflict(&store().await).await;
}

#[tokio::test]
async fn the_dynamodb_audit_trail_is_append_only_and_read_newest_first() {
    the_audit_trail_is_append_only_and_read_newest_first(&store().await).await;
}

#[tokio::test]
async fn the_dynamodb_audit_trail_pages_backwards_from_a_cursor() {
    the_audit_trail_pages_backwards_from_a_cursor(&store().await).await;
}

#[tokio::test]
async fn the_dynamodb_audit_trail_is_in_time_order_whoever_wrote_it() {
    the_audit_trail_is_in_time_order_whoever_wrote_it(&store().await).await;
}

#[tokio::test]
async fn a_replayed_invocation_writes_nothing_in_dynamodb() {
    a_replayed_invocation_writes_nothing(&store().await).await;
}
