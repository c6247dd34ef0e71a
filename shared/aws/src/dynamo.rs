//! The store on one DynamoDB table (`pk`, `sk` strings; `ttl` for expiring items).
//!
//! | entity | pk | sk | notes |
//! | --- | --- | --- | --- |
//! | revenue snapshot | `REVENUE` | `2026-11-29` | created once per day (`attribute_not_exists`); `backfilled_from: stripe-invoices` on a day filled after it was missed |
//! | cost snapshot | `COST` | `2026-11-29` | created once per day; `backfilled_from: cost-explorer` on a day filled after it was missed |
//! | system state | `STATE` | `CURRENT` | `version` incremented by every write, checked by the next |
//! | audit record, by time | `AUDIT` | `<UTC time, ms>#<id>` ([`AuditRecord::trail_key`]) | the trail, newest first, whoever wrote it |
//! | audit record, by id | `AUDIT_ID` | the record's id (a decision id...) | the same record; created only if absent: an id is written once |
//! | idempotency record | `INVOCATION` | the Lambda event id | TTL 7 days; makes a replayed invocation a no-op |
//! | publish mark | `PUBLISHED` | decision id | TTL 7 days; a committed Execute without it is published again on replay |
//!
//! Every read is a `GetItem` or a bounded `Query` on one partition key: no scans.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::NaiveDate;
use revscale_engine::History;
use revscale_engine::ports::{
    AuditRecord, AuditStore, CostSnapshot, RevenueSnapshot, ScopedStore, Snapshot, SnapshotKind,
    SnapshotStore, StateStore, StoreError, Versioned, Written, join_marked,
};
use revscale_engine::state::SystemState;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_dynamo::aws_sdk_dynamodb_1::{from_item, from_items, to_item};

const REVENUE: &str = "REVENUE";
const COST: &str = "COST";
const STATE: &str = "STATE";
const AUDIT: &str = "AUDIT";
const AUDIT_ID: &str = "AUDIT_ID";
const INVOCATION: &str = "INVOCATION";
const PUBLISHED: &str = "PUBLISHED";
const IDEMPOTENCY_TTL_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// The invocation this store writes for, recorded with each decision so a replay
    /// of the same invocation writes nothing.
    invocation_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Item<T> {
    pk: String,
    sk: String,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize, Deserialize)]
struct StateBody {
    version: u64,
    state: SystemState,
}

/// The mark only needs to exist; its TTL lets DynamoDB drop it with the invocation
/// records it answers for.
#[derive(Serialize, Deserialize)]
struct PublishedBody {
    ttl: i64,
}

#[derive(Serialize, Deserialize)]
struct InvocationBody {
    decision_id: String,
    ttl: i64,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into(), invocation_id: None }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn create<T: Serialize>(&self, pk: &str, sk: &str, body: T) -> Result<Written, StoreError> {
        let item = to_item(Item { pk: pk.into(), sk: sk.into(), body })
            .map_err(|e| StoreError::Other(e.to_string()))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(Written::Created),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Written::AlreadyExists),
            Err(e) => Err(classify(e)),
        }
    }

    async fn query<T: DeserializeOwned>(
        &self,
        pk: &str,
        range: Option<(String, String)>,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start);
            q = match &range {
                Some((from, to)) => q
                    .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":from", AttributeValue::S(from.clone()))
                    .expression_attribute_values(":to", AttributeValue::S(to.clone())),
                None => q.key_condition_expression("pk = :pk"),
            };
            if let Some(limit) = limit {
                q = q.limit((limit - out.len()).min(1000) as i32);
            }
            let page = q.send().await.map_err(classify)?;
            let items: Vec<Item<T>> =
                from_items(page.items.unwrap_or_default()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.extend(items.into_iter().map(|i| i.body));
            start = page.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| out.len() >= l) {
                return Ok(out);
            }
        }
    }
}

fn item<T: Serialize>(
    value: Item<T>,
) -> Result<std::collections::HashMap<String, AttributeValue>, StoreError> {
    to_item(value).map_err(|e| StoreError::Other(e.to_string()))
}

/// Why each item of a cancelled transaction was refused, in item order (`None` codes as
/// empty strings); empty for any other error.
fn cancellation_codes<R>(err: &SdkError<TransactWriteItemsError, R>) -> Vec<String> {
    err.as_service_error()
        .and_then(|s| match s {
            TransactWriteItemsError::TransactionCanceledException(t) => t.cancellation_reasons.clone(),
            _ => None,
        })
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.code.unwrap_or_default())
        .collect()
}

/// The cancellation reasons DynamoDB gives a transaction an item of which was throttled.
fn is_throttling_reason(code: &str) -> bool {
    matches!(code, "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded")
}

fn classify<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static, R: std::fmt::Debug>(
    e: SdkError<E, R>,
) -> StoreError {
    let code = e.code().unwrap_or_default().to_string();
    let message = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e));
    match code.as_str() {
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "LimitExceededException"
        | "RequestLimitExceeded"
        | "InternalServerError"
        | "ServiceUnavailable" => StoreError::Transient(message),
        _ if matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)) => {
            StoreError::Transient(message)
        }
        _ => StoreError::Other(message),
    }
}

/// The same store, recording the invocation id (the Lambda event or request id) with
/// each decision: a second write under the same id is a replay and writes nothing.
impl ScopedStore for DynamoStore {
    type Scoped = DynamoStore;
    fn for_invocation(&self, invocation_id: &str) -> Self::Scoped {
        DynamoStore { invocation_id: Some(invocation_id.to_string()), ..self.clone() }
    }
}

impl SnapshotStore for DynamoStore {
    async fn put_revenue(&self, snapshot: &RevenueSnapshot) -> Result<Written, StoreError> {
        self.create(REVENUE, &snapshot.date.to_string(), snapshot).await
    }
    async fn put_cost(&self, snapshot: &CostSnapshot) -> Result<Written, StoreError> {
        self.create(COST, &snapshot.date.to_string(), snapshot).await
    }
    async fn put_backfilled(&self, snapshot: &Snapshot) -> Result<Written, StoreError> {
        let backfilled_from = Some(snapshot.kind().backfill_source().to_string());
        let sk = snapshot.date().to_string();
        match snapshot {
            Snapshot::Revenue(body) => {
                self.create(REVENUE, &sk, Marked { body, imported_from: None, backfilled_from }).await
            }
            Snapshot::Cost(body) => {
                self.create(COST, &sk, Marked { body, imported_from: None, backfilled_from }).await
            }
        }
    }
    async fn snapshot_days(
        &self,
        kind: SnapshotKind,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeSet<NaiveDate>, StoreError> {
        let pk = match kind {
            SnapshotKind::Revenue => REVENUE,
            SnapshotKind::Cost => COST,
        };
        let mut days = BTreeSet::new();
        let mut start = None;
        loop {
            // The keys alone: which days are there, not what they hold.
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
                .expression_attribute_values(":from", AttributeValue::S(from.to_string()))
                .expression_attribute_values(":to", AttributeValue::S(to.to_string()))
                .projection_expression("sk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in page.items.unwrap_or_default() {
                let sk = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .ok_or_else(|| StoreError::Corrupt(format!("a {pk} item has no string sk")))?;
                let day =
                    sk.parse().map_err(|_| StoreError::Corrupt(format!("{pk} item '{sk}' is not dated")))?;
                days.insert(day);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(days);
            }
        }
    }
    async fn history(&self, from: NaiveDate, to: NaiveDate) -> Result<History, StoreError> {
        let range = Some((from.to_string(), to.to_string()));
        let revenue: Vec<Marked<RevenueSnapshot>> = self.query(REVENUE, range.clone(), false, None).await?;
        let cost: Vec<Marked<CostSnapshot>> = self.query(COST, range, false, None).await?;
        let revenue_backfilled: BTreeSet<NaiveDate> =
            revenue.iter().filter(|m| m.backfilled_from.is_some()).map(|m| m.body.date).collect();
        let cost_backfilled: BTreeSet<NaiveDate> =
            cost.iter().filter(|m| m.backfilled_from.is_some()).map(|m| m.body.date).collect();
        let revenue: Vec<RevenueSnapshot> = revenue.into_iter().map(|m| m.body).collect();
        let cost: Vec<CostSnapshot> = cost.into_iter().map(|m| m.body).collect();
        Ok(join_marked(&revenue, &cost, &revenue_backfilled, &cost_backfilled))
    }
}

/// A snapshot as stored, with the mark `revscale history import` leaves on the days it
/// wrote, or the one a collector leaves on a day it filled after missing it (both
/// absent on collected days, and on items written before the marks existed). Readers
/// of the snapshot alone ignore the marks.
#[derive(Serialize, Deserialize)]
struct Marked<T> {
    #[serde(flatten)]
    body: T,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    imported_from: Option<String>,
    /// `stripe-invoices` or `cost-explorer` ([`SnapshotKind::backfill_source`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backfilled_from: Option<String>,
}

/// One stored day, for `revscale history export`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDay {
    pub revenue: Option<RevenueSnapshot>,
    pub cost: Option<CostSnapshot>,
    /// Where an imported day came from; `None` for a collected one.
    pub imported_from: Option<String>,
    /// The sources a collector backfilled this day's snapshots from after a missed run
    /// (`stripe-invoices`, `cost-explorer`); empty for a day collected on the day.
    pub backfilled_from: Vec<String>,
}

impl DynamoStore {
    /// Writes one past day's two snapshots in one transaction, each only if absent: a
    /// day that has either (collected, or imported before) is left exactly as it is,
    /// and `AlreadyExists` says so. `source` is kept on both items.
    pub async fn import_day(
        &self,
        revenue: &RevenueSnapshot,
        cost: &CostSnapshot,
        source: &str,
    ) -> Result<Written, StoreError> {
        let day = revenue.date.to_string();
        let put = |pk: &str, item: std::collections::HashMap<String, AttributeValue>| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(|e| StoreError::Other(format!("{pk} {day}: {e}")))
        };
        let imported_from = Some(source.to_string());
        let items = vec![
            put(
                REVENUE,
                item(Item {
                    pk: REVENUE.into(),
                    sk: day.clone(),
                    body: Marked {
                        body: revenue,
                        imported_from: imported_from.clone(),
                        backfilled_from: None,
                    },
                })?,
            )?,
            put(
                COST,
                item(Item {
                    pk: COST.into(),
                    sk: day.clone(),
                    body: Marked { body: cost, imported_from, backfilled_from: None },
                })?,
            )?,
        ];
        let err = match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => return Ok(Written::Created),
            Err(e) => e,
        };
        let reasons = cancellation_codes(&err);
        if reasons.iter().any(|c| c == "ConditionalCheckFailed") {
            return Ok(Written::AlreadyExists);
        }
        if reasons.iter().any(|c| c == "TransactionConflict" || is_throttling_reason(c)) {
            let message = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
            return Err(StoreError::Transient(message));
        }
        Err(classify(err))
    }

    /// Every stored day from `from` to `to` inclusive that has a snapshot of either
    /// kind, oldest first: two bounded queries, no scan.
    pub async fn stored_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<std::collections::BTreeMap<NaiveDate, StoredDay>, StoreError> {
        let range = Some((from.to_string(), to.to_string()));
        let revenue: Vec<Marked<RevenueSnapshot>> = self.query(REVENUE, range.clone(), false, None).await?;
        let cost: Vec<Marked<CostSnapshot>> = self.query(COST, range, false, None).await?;
        let mut days = std::collections::BTreeMap::new();
        let blank = || StoredDay { revenue: None, cost: None, imported_from: None, backfilled_from: vec![] };
        for r in revenue {
            let day = days.entry(r.body.date).or_insert_with(blank);
            day.imported_from = day.imported_from.take().or(r.imported_from);
            day.backfilled_from.extend(r.backfilled_from);
            day.revenue = Some(r.body);
        }
        for c in cost {
            let day = days.entry(c.body.date).or_insert_with(blank);
            day.imported_from = day.imported_from.take().or(c.imported_from);
            day.backfilled_from.extend(c.backfilled_from);
            day.cost = Some(c.body);
        }
        Ok(days)
    }
}

impl StateStore for DynamoStore {
    async fn load_state(&self) -> Result<Option<Versioned<SystemState>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(STATE.into()))
            .key("sk", AttributeValue::S("CURRENT".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = out.item else { return Ok(None) };
        let stored: Item<StateBody> = from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut state = stored.body.state;
        state.version = stored.body.version;
        Ok(Some(Versioned { value: state, version: stored.body.version }))
    }
    async fn record_decision(
        &self,
        record: &AuditRecord,
        state: &SystemState,
        expected_version: Option<u64>,
    ) -> Result<Written, StoreError> {
        let version = expected_version.map_or(1, |v| v + 1);
        let mut stored = state.clone();
        stored.version = version;

        let mut items = Vec::new();
        if let Some(invocation) = &self.invocation_id {
            let ttl = record.at.timestamp() + IDEMPOTENCY_TTL_SECONDS;
            let body = InvocationBody { decision_id: record.id.clone(), ttl };
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item(Item { pk: INVOCATION.into(), sk: invocation.clone(), body })?))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| StoreError::Other(e.to_string()))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        // The record names the state version it wrote instead of embedding the state.
        // Twice: by id, written only if absent (an id is recorded once, and a provisioner
        // checks a decision by its id), and by time, for the trail.
        let record = AuditRecord { state_version: Some(version), ..record.clone() };
        let by_id = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item(Item { pk: AUDIT_ID.into(), sk: record.id.clone(), body: &record })?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        items.push(TransactWriteItem::builder().put(by_id).build());
        let by_time = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item(Item { pk: AUDIT.into(), sk: record.trail_key(), body: &record })?))
            .build()
            .map_err(|e| StoreError::Other(e.to_string()))?;
        items.push(TransactWriteItem::builder().put(by_time).build());
        let state_put = Put::builder().table_name(&self.table).set_item(Some(item(Item {
            pk: STATE.into(),
            sk: "CURRENT".into(),
            body: StateBody { version, state: stored },
        })?));
        let state_put = match expected_version {
            None => state_put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => state_put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
        }
        .build()
        .map_err(|e| StoreError::Other(e.to_string()))?;
        items.push(TransactWriteItem::builder().put(state_put).build());

        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let err = match result {
            Ok(_) => return Ok(Written::Created),
            Err(e) => e,
        };
        if err.code() != Some("TransactionCanceledException") {
            return Err(classify(err));
        }
        // Which condition failed, in item order: invocation (if any), audit by id, audit
        // by time (unconditional), state.
        let reasons = cancellation_codes(&err);
        let failed = |i: usize| reasons.get(i).is_some_and(|c| c == "ConditionalCheckFailed");
        let offset = usize::from(self.invocation_id.is_some());
        if (offset == 1 && failed(0)) || failed(offset) {
            return Ok(Written::AlreadyExists);
        }
        if failed(offset + 2) {
            return Err(StoreError::Conflict(format!("state version {expected_version:?}")));
        }
        if reasons.iter().any(|c| c == "TransactionConflict") {
            return Err(StoreError::Conflict("concurrent transaction".into()));
        }
        // A transaction cancelled because an item was throttled wrote nothing and is
        // worth retrying as is.
        if reasons.iter().any(|c| is_throttling_reason(c)) {
            let message = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
            return Err(StoreError::Transient(message));
        }
        Err(classify(err))
    }
}

impl AuditStore for DynamoStore {
    async fn mark_published(&self, id: &str) -> Result<(), StoreError> {
        let ttl = chrono::Utc::now().timestamp() + IDEMPOTENCY_TTL_SECONDS;
        let body = PublishedBody { ttl };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item(Item { pk: PUBLISHED.into(), sk: id.into(), body })?))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
    async fn is_published(&self, id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(PUBLISHED.into()))
            .key("sk", AttributeValue::S(id.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item.is_some())
    }
    async fn recorded_by_invocation(&self) -> Result<Option<String>, StoreError> {
        let Some(invocation) = &self.invocation_id else { return Ok(None) };
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(INVOCATION.into()))
            .key("sk", AttributeValue::S(invocation.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = out.item else { return Ok(None) };
        let stored: Item<InvocationBody> = from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(stored.body.decision_id))
    }
    async fn audit_record(&self, id: &str) -> Result<Option<AuditRecord>, StoreError> {
        // Records written before the trail was keyed by time stand under their id in the
        // AUDIT partition: a decision in flight across the upgrade is still found.
        for pk in [AUDIT_ID, AUDIT] {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(pk.into()))
                .key("sk", AttributeValue::S(id.into()))
                .consistent_read(true)
                .send()
                .await
                .map_err(classify)?;
            if let Some(item) = out.item {
                let stored: Item<AuditRecord> =
                    from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                return Ok(Some(stored.body));
            }
        }
        Ok(None)
    }
    async fn recent_audit(
        &self,
        limit: usize,
        before: Option<String>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        // Sort keys are trail keys, which never start below a space; a key value may not
        // be empty, so " " is the lower bound. The range includes `before`, dropped below.
        let range = before.map(|b| (" ".to_string(), b));
        let mut records: Vec<AuditRecord> = self.query(AUDIT, range.clone(), true, Some(limit + 1)).await?;
        if let Some((_, before)) = range {
            records.retain(|r| r.trail_key() != before);
        }
        records.truncate(limit);
        Ok(records)
    }
}
