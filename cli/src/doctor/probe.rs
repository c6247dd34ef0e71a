//! What `revscale doctor` reads, area by area, with the operator's credentials. Each
//! probe turns its own failures into a line (a FAIL, or a SKIP when the caller may not
//! read something), so one refusal never hides the other checks.

use std::collections::{BTreeMap, BTreeSet};

use aws_config::SdkConfig;
use chrono::{Days, NaiveDate};
use revscale_api::auth::Patterns;
use revscale_aws::cost_explorer::CostExplorerSource;
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::iam::Iam;
use revscale_aws::secrets::{SecretRef, read_secret};
use revscale_aws::stripe::{COUNTED_STATUSES, StripeError, StripeSource};
use revscale_engine::config::Deployment;
use revscale_engine::money::FxRates;
use revscale_engine::ports::{AuditStore, ComponentDriver, StateStore};
use revscale_engine::{Config, Currency};

use super::checks::{self, Check, EndpointAnswer, Verdict};
use crate::stack::Stack;

/// What every probe needs.
pub struct Probe<'a> {
    pub sdk: &'a SdkConfig,
    pub stack: &'a Stack,
    pub today: NaiveDate,
    pub stripe_api_base: &'a str,
}

fn aws_error<E: std::error::Error>(e: E) -> String {
    // The SDK's Display is terse; its context says the code and message.
    concise(&format!("{}", aws_sdk_ssm::error::DisplayErrorContext(&e)))
}

/// An SDK error's code and message, without the debug dump of the raw response that
/// `DisplayErrorContext` appends (a line of the report, not a log).
fn concise(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let cut = [" (ServiceError(", " (DispatchFailure(", " (TimeoutError(", " (ResponseError("]
        .iter()
        .filter_map(|marker| first.find(marker))
        .min()
        .unwrap_or(first.len());
    first[..cut].to_string()
}

fn is_denied(text: &str) -> bool {
    text.contains("AccessDenied") || text.contains("UnauthorizedOperation") || text.contains("not authorized")
}

impl Probe<'_> {
    fn param(&self, name: &str, default: &str) -> String {
        self.stack.parameters.get(name).cloned().unwrap_or_else(|| default.to_string())
    }

    fn fx(&self) -> FxRates {
        FxRates::parse_list(&self.param("FxRates", "")).unwrap_or_default()
    }

    pub fn tag_key(&self) -> String {
        self.param("CostTagKey", "revscale-component")
    }

    // ---- cost data ----------------------------------------------------------------

    pub async fn cost(&self, currency: Currency) -> Vec<Check> {
        let mut out = Vec::new();
        let tag_key = self.tag_key();
        out.push(checks::cost_tag_key(&tag_key));
        let source = CostExplorerSource::new(self.sdk, "UnblendedCost", tag_key.clone(), currency, self.fx());
        let week = self.today - Days::new(7);
        out.push(match source.daily(week, self.today).await {
            Ok(costs) => {
                let unmanaged: rust_decimal::Decimal = costs.unmanaged.values().sum();
                Check::pass(
                    "cost",
                    "Cost Explorer",
                    format!(
                        "answers: {} {} in the last 7 days, {} of it on components",
                        costs.currency,
                        (unmanaged + costs.managed_total).round_dp(2),
                        costs.managed_total.round_dp(2)
                    ),
                )
            }
            // The caller may not read it: the collector's own role may.
            Err(e) if is_denied(&e.to_string()) => {
                Check::skip("cost", "Cost Explorer", format!("you may not read it: {}", concise(&e.to_string())))
                    .fix("allow ce:GetCostAndUsage to the caller (docs/iam.md#revscale-doctor)")
            }
            Err(e) => Check::fail("cost", "Cost Explorer", format!("does not answer: {}", concise(&e.to_string()))).fix(
                "Billing and Cost Management console > Cost Explorer > Launch Cost Explorer (data appears within 24 h)",
            ),
        });
        let (managed, untagged) = self.untagged().await;
        let client = aws_sdk_costexplorer::Client::new(self.sdk);
        let wanted = vec![checks::COMPONENT_TAG.to_string(), checks::STACK_TAG.to_string()];
        match client.list_cost_allocation_tags().set_tag_keys(Some(wanted)).send().await {
            Ok(answer) => {
                let listed: Vec<checks::CostTag> = answer
                    .cost_allocation_tags()
                    .iter()
                    .map(|t| checks::CostTag {
                        key: t.tag_key().to_string(),
                        active: t.status().as_str() == "Active",
                        last_updated: t
                            .last_updated_date()
                            .and_then(|d| d.get(..10))
                            .and_then(|d| d.parse().ok()),
                    })
                    .collect();
                let carried =
                    managed.iter().filter(|(_, tags)| tags.contains_key(checks::COMPONENT_TAG)).count();
                out.extend(checks::cost_tags(&listed, carried, self.today));
            }
            Err(e) => {
                let text = aws_error(e);
                out.push(
                    Check::skip("cost", "cost allocation tags", format!("cannot list them: {text}"))
                        .fix("allow ce:ListCostAllocationTags to the caller (docs/iam.md#revscale-doctor)"),
                );
            }
        }
        out.push(untagged);
        out
    }

    /// The resources tagged `revscale:managed=true` (of this stack, or of none), and the
    /// check that each carries the component tag.
    async fn untagged(&self) -> (Vec<(String, BTreeMap<String, String>)>, Check) {
        let client = aws_sdk_resourcegroupstagging::Client::new(self.sdk);
        let resources = match crate::orphans::managed_resources(&client).await {
            Ok(r) => r,
            Err(e) => {
                let check = Check::skip(
                    "cost",
                    format!("managed resources tagged {}", checks::COMPONENT_TAG),
                    aws_error(e),
                )
                .fix("allow tag:GetResources to the caller");
                return (vec![], check);
            }
        };
        // Another revscale stack's resources are that stack's business.
        let managed: Vec<(String, BTreeMap<String, String>)> = resources
            .into_iter()
            .filter(|r| r.tags.get(checks::STACK_TAG).is_none_or(|s| s == &self.stack.name))
            .map(|r| (r.arn, r.tags))
            .collect();
        let check = checks::untagged_managed(checks::COMPONENT_TAG, &managed);
        (managed, check)
    }

    // ---- Stripe -----------------------------------------------------------------------

    pub async fn stripe(&self, currency: Currency) -> Vec<Check> {
        let secret = self.param("StripeSecretArn", "");
        // Where the key came from, said on the key's line: STRIPE_API_KEY may not be the
        // key the stack holds.
        let (key, origin) = match read_secret(self.sdk, &SecretRef::SecretsManager(secret.clone())).await {
            Ok(key) => (key, String::new()),
            Err(e) => match std::env::var("STRIPE_API_KEY").ok().filter(|k| !k.trim().is_empty()) {
                Some(key) => (key, format!(" (STRIPE_API_KEY's: the stack's secret could not be read: {e})")),
                None => {
                    let why = format!("cannot read the key from {secret}: {e}");
                    return vec![
                        Check::new(
                            "stripe",
                            "Stripe key",
                            if is_denied(&format!("{e:?}")) { Verdict::Skip } else { Verdict::Fail },
                            why,
                        )
                        .fix("allow secretsmanager:GetSecretValue on the secret to the caller, or set STRIPE_API_KEY to the same key"),
                    ];
                }
            },
        };
        let mut kind = checks::stripe_key(&key);
        kind.found.push_str(&origin);
        let mut out = vec![kind];
        let source = match StripeSource::new(self.stripe_api_base, key, currency, self.fx()) {
            Ok(s) => s,
            Err(e) => {
                out.push(Check::fail("stripe", "Stripe API", e.to_string()));
                return out;
            }
        };
        let mut seen_currencies = BTreeSet::new();
        let mut sampled = 0;
        let mut read_pages = 0;
        let mut first_subscription: Option<String> = None;
        let mut first_invoice: Option<String> = None;
        for (endpoint, permission) in checks::STRIPE_ENDPOINTS {
            let path = format!("/v1/{endpoint}");
            let answer = match endpoint {
                "subscription_items" => match &first_subscription {
                    None => Err(EndpointAnswer::NotAsked("no subscription to list the items of".into())),
                    Some(id) => source
                        .first_page(&["v1", endpoint], &[("subscription", id.clone())], 1)
                        .await
                        .map_err(endpoint_answer),
                },
                // Many enough to see the account's currencies: every status, filtered
                // below to those the collector counts; active prices only.
                "subscriptions" => source
                    .first_page(&["v1", endpoint], &[("status", "all".into())], 100)
                    .await
                    .map_err(endpoint_answer),
                "prices" => source
                    .first_page(&["v1", endpoint], &[("active", "true".into())], 100)
                    .await
                    .map_err(endpoint_answer),
                _ => source.first_page(&["v1", endpoint], &[], 1).await.map_err(endpoint_answer),
            };
            let answer = match answer {
                Ok(page) => {
                    let data = page["data"].as_array().cloned().unwrap_or_default();
                    if matches!(endpoint, "subscriptions" | "prices") {
                        read_pages += 1;
                        sampled += data.len();
                        let counted = |o: &&serde_json::Value| {
                            endpoint == "prices"
                                || o["status"].as_str().is_none_or(|st| COUNTED_STATUSES.contains(&st))
                        };
                        seen_currencies.extend(
                            data.iter()
                                .filter(counted)
                                .filter_map(|o| o["currency"].as_str())
                                .map(str::to_ascii_uppercase),
                        );
                    }
                    let first = data.first().and_then(|o| o["id"].as_str()).map(String::from);
                    match endpoint {
                        "subscriptions" => first_subscription = first,
                        "invoices" => first_invoice = first,
                        _ => {}
                    }
                    EndpointAnswer::Answered
                }
                Err(answer) => answer,
            };
            out.push(checks::stripe_endpoint(&path, permission, &answer));
        }
        if let Some(invoice) = first_invoice {
            let answer = source
                .first_page(&["v1", "invoices", &invoice, "lines"], &[], 1)
                .await
                .map_or_else(endpoint_answer, |_| EndpointAnswer::Answered);
            out.push(checks::stripe_endpoint("/v1/invoices/{id}/lines", "Invoices: Read", &answer));
        }
        if read_pages == 0 {
            out.push(Check::skip(
                "stripe",
                "Stripe currencies",
                "neither subscriptions nor prices could be read",
            ));
            return out;
        }
        let fx = self.fx();
        let rated: BTreeSet<String> = seen_currencies
            .iter()
            .filter(|c| c.parse::<Currency>().is_ok_and(|c| fx.rate(c, currency).is_ok()))
            .cloned()
            .collect();
        out.push(checks::stripe_currencies(&seen_currencies, &currency.to_string(), &rated, sampled));
        out
    }

    // ---- schedules and alerts -----------------------------------------------------------

    pub async fn schedules(&self) -> Vec<Check> {
        let timezone = self.param("ScheduleTimezone", "UTC");
        let names = match self.stack.output("ScheduleNames") {
            Ok(names) => names,
            Err(e) => {
                return vec![
                    Check::skip("schedules", "daily schedules", e.to_string())
                        .fix("sam deploy (a stack of this version names its schedules)"),
                ];
            }
        };
        let client = aws_sdk_scheduler::Client::new(self.sdk);
        let mut out = Vec::new();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match client.get_schedule().name(name).send().await {
                Ok(s) => {
                    let found = checks::Schedule {
                        name: name.to_string(),
                        enabled: s.state().is_none_or(|st| st.as_str() == "ENABLED"),
                        timezone: s.schedule_expression_timezone().map(String::from),
                        expression: s.schedule_expression().unwrap_or_default().to_string(),
                    };
                    out.push(checks::schedule(Some(&found), name, &timezone));
                }
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                    out.push(checks::schedule(None, name, &timezone));
                }
                Err(e) => out.push(
                    Check::skip("schedules", format!("schedule {name}"), aws_error(e))
                        .fix("allow scheduler:GetSchedule to the caller"),
                ),
            }
        }
        out
    }

    pub async fn dead_letters(&self) -> Check {
        let Ok(url) = self.stack.output("DailyDeadLetterQueueUrl") else {
            return Check::skip(
                "schedules",
                "failed daily runs",
                "the stack names no DailyDeadLetterQueueUrl",
            );
        };
        let answer = aws_sdk_sqs::Client::new(self.sdk)
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await;
        match answer {
            Ok(a) => {
                let waiting = a
                    .attributes()
                    .and_then(|m| m.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                checks::dead_letters(waiting)
            }
            Err(e) => Check::skip("schedules", "failed daily runs", aws_error(e))
                .fix("allow sqs:GetQueueAttributes to the caller"),
        }
    }

    pub async fn alerts(&self) -> Check {
        let Ok(topic) = self.stack.output("AlertTopicArn") else {
            return Check::skip("alerts", "alert subscriptions", "the stack names no AlertTopicArn");
        };
        let client = aws_sdk_sns::Client::new(self.sdk);
        let mut found = Vec::new();
        let mut token = None;
        loop {
            match client.list_subscriptions_by_topic().topic_arn(&topic).set_next_token(token).send().await {
                Ok(page) => {
                    found.extend(page.subscriptions().iter().map(|s| checks::Subscription {
                        protocol: s.protocol().unwrap_or_default().to_string(),
                        endpoint: s.endpoint().unwrap_or_default().to_string(),
                        arn: s.subscription_arn().unwrap_or_default().to_string(),
                    }));
                    token = page.next_token().map(String::from);
                    if token.is_none() {
                        break;
                    }
                }
                Err(e) => {
                    return Check::skip("alerts", "alert subscriptions", aws_error(e))
                        .fix("allow sns:ListSubscriptionsByTopic to the caller");
                }
            }
        }
        checks::subscriptions(&topic, &found)
    }

    // ---- data -----------------------------------------------------------------------------

    /// The snapshots, the debounce's history and each daily job's last mark.
    pub async fn data(&self, config: &Config) -> Vec<Check> {
        let table = match self.stack.output("TableName") {
            Ok(t) => t,
            Err(e) => return vec![Check::skip("data", "snapshots", e.to_string())],
        };
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(self.sdk), table);
        let months = config.levels.iter().map(|l| l.required_consecutive_months).max().unwrap_or(0).max(3);
        let from = (self.today - Days::new(checks::DATA_DAYS))
            .min(self.today.checked_sub_months(chrono::Months::new(months + 1)).unwrap_or(self.today));
        let stored = match store.stored_days(from, self.today).await {
            Ok(days) => days,
            Err(e) => {
                return vec![
                    Check::skip("data", "snapshots", format!("cannot read the table: {e}"))
                        .fix("allow dynamodb:Query on the stack's table to the caller"),
                ];
            }
        };
        let days: BTreeMap<NaiveDate, checks::StoredDay> = stored
            .iter()
            .map(|(d, s)| {
                (
                    *d,
                    checks::StoredDay {
                        revenue: s.revenue.is_some(),
                        cost: s.cost.is_some(),
                        backfilled: !s.backfilled_from.is_empty(),
                        imported: s.imported_from.is_some(),
                    },
                )
            })
            .collect();
        let refill = checks::refill_commands(
            months + 1,
            &self.stack.name,
            &self.param("FxRates", ""),
            "config/revenue_thresholds.yaml",
        );
        let last = |f: fn(&checks::StoredDay) -> bool| days.iter().rev().find(|(_, s)| f(s)).map(|(d, _)| *d);
        let mut out = vec![
            checks::snapshots(&days, self.today, &refill),
            checks::debounce_windows(days.keys().next().copied(), months, self.today, &refill),
            checks::last_run("revenue snapshot (collect-revenue)", last(|s| s.revenue), self.today),
            checks::last_run("cost snapshot (collect-cost)", last(|s| s.cost), self.today),
        ];
        out.push(match store.recent_audit(200, None).await {
            Ok(records) => checks::last_run(
                "evaluation (evaluate)",
                records.iter().find(|r| r.kind == "evaluation").map(|r| r.at.date_naive()),
                self.today,
            ),
            Err(e) => {
                Check::skip("schedules", "last evaluation", format!("cannot read the audit trail: {e}"))
            }
        });
        out
    }

    // ---- configuration ------------------------------------------------------------------

    /// The stack's configuration (pushed, else the local file) and the checks on it.
    pub async fn config(&self, local: Option<(&str, &str)>) -> (Option<Config>, Vec<Check>) {
        let name = match self.stack.output("ConfigParameterName") {
            Ok(n) => n,
            Err(e) => return (None, vec![Check::fail("config", "configuration", e.to_string())]),
        };
        let mut out = Vec::new();
        let pushed =
            match revscale_aws::runtime_config::read_pushed(&aws_sdk_ssm::Client::new(self.sdk), &name).await
            {
                Ok(p) => p,
                Err(e) => {
                    out.push(Check::skip("config", format!("configuration {name}"), e.to_string()).fix(
                        "allow ssm:GetParameter on it, and ssm:GetParameters on its files, to the caller",
                    ));
                    return (local.and_then(|(_, text)| crate::parse_config(text, "local").ok()), out);
                }
            };
        let deployed = match &pushed {
            None => {
                out.push(
                    Check::warn(
                        "config",
                        format!("configuration {name}"),
                        "never pushed: the functions run the configuration built into them",
                    )
                    .fix("revscale config push config/revenue_thresholds.yaml --stack <stack>"),
                );
                None
            }
            Some(pushed) => match pushed.config(&name) {
                Err(e) => {
                    out.push(
                        Check::fail(
                            "config",
                            format!("configuration {name}"),
                            format!("does not validate: {e}: the functions fail at cold start"),
                        )
                        .fix("revscale config push <a valid file> --stack <stack>"),
                    );
                    None
                }
                Ok(config) => {
                    match crate::config_push::check_against(&config, self.stack) {
                        Ok(notes) => out.push(Check::pass(
                            "config",
                            format!("configuration {name}"),
                            if notes.is_empty() {
                                "validates and matches the stack".to_string()
                            } else {
                                format!("validates and matches the stack; {}", notes.join("; "))
                            },
                        )),
                        Err(e) => out.push(
                            Check::fail(
                                "config",
                                format!("configuration {name}"),
                                format!("does not match the stack: {e}"),
                            )
                            .fix("fix the file, then revscale config push <file> --stack <stack>"),
                        ),
                    }
                    Some((pushed.text.clone(), config))
                }
            },
        };
        if let Some((file, text)) = local {
            out.push(match (&deployed, crate::parse_config(text, file)) {
                (_, Err(e)) => Check::fail(
                    "config",
                    format!("{file} against the stack's"),
                    format!("{file} does not validate: {e}"),
                ),
                (None, Ok(_)) => Check::skip(
                    "config",
                    format!("{file} against the stack's"),
                    "no valid pushed configuration to compare with",
                ),
                (Some((pushed_text, pushed)), Ok(local_config)) => {
                    // Where the files were read from (a path, a parameter) is no difference.
                    if local_config.clone().without_file_names() == pushed.clone().without_file_names() {
                        Check::pass("config", format!("{file} against the stack's"), "the same")
                    } else {
                        Check::warn(
                            "config",
                            format!("{file} against the stack's"),
                            format!("differs: {}", super::diff::yaml_paths(pushed_text, text).join("; ")),
                        )
                        .fix(format!(
                            "revscale config push {file} --stack <stack> (if the file is what should run)"
                        ))
                    }
                }
            });
        }
        let config =
            deployed.map(|(_, c)| c).or_else(|| local.and_then(|(f, t)| crate::parse_config(t, f).ok()));
        (config, out)
    }

    // ---- components -----------------------------------------------------------------

    pub async fn components(&self, config: &Config) -> Vec<Check> {
        let deployment = Deployment::from_parameters(|name| self.stack.parameters.get(name).cloned());
        let config = match config.for_deployment(&deployment) {
            Ok(c) => c,
            Err(e) => {
                return vec![Check::fail(
                    "components",
                    "components",
                    format!("the configuration does not fit the stack: {e}"),
                )];
            }
        };
        let drivers = revscale_aws::drivers::AwsDrivers::new(self.sdk);
        let iam = Iam::new(self.sdk);
        let role = self.stack.output("ProvisionRoleArn").ok();
        // The ARNs the simulations name: the partition and account of the role itself.
        let region = self.sdk.region().map(ToString::to_string).unwrap_or_default();
        let place = role.as_deref().and_then(|r| checks::Place::from_arn(r, &region));
        let mut out = Vec::new();
        let mut eks = false;
        for id in &config.activation_order {
            let Some(component) = config.component(id) else { continue };
            if component.is_always_on() {
                continue;
            }
            let kind = component.driver.as_kind();
            eks |= component.driver.kind().starts_with("eks");
            let name = format!("{id} ({})", component.driver.kind());
            out.push(match drivers.observe(component).await {
                Ok(seen) if seen.absent && kind.must_exist() => Check::fail(
                    "components",
                    format!("{name} exists"),
                    format!(
                        "{} is missing ({}): its first transition will fail",
                        kind.resource(),
                        seen.actual
                    ),
                )
                .fix(format!("create it, or fix components.{id}.driver and revscale config push")),
                Ok(seen) => Check::pass("components", format!("{name} exists"), seen.actual),
                Err(e) => Check::warn(
                    "components",
                    format!("{name} exists"),
                    format!("cannot read it: {}", concise(&e.to_string())),
                ),
            });
            let (Some(role), Some(place)) = (&role, &place) else { continue };
            let actions = revscale_aws::drivers::iam_actions(&component.driver);
            let mut results = Vec::new();
            let mut failed = None;
            for simulation in
                checks::simulations(&component.driver, actions, role, place, &self.stack.name, id.as_str())
            {
                match iam.simulate(role, &simulation).await {
                    Ok(r) => results.extend(r),
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            out.push(match failed {
                None => permission_check(&name, role, &results),
                Some(why) => Check::skip(
                    "components",
                    format!("{name} permissions"),
                    format!("cannot simulate the provisioner's policy: {why}"),
                )
                .fix("allow iam:SimulatePrincipalPolicy on the provisioner's role to the caller"),
            });
        }
        if eks {
            out.extend(self.eks_roles(&iam, role.as_deref(), place.as_ref()).await);
        }
        out
    }

    /// The service-linked roles EKS needs (the cluster's and the managed node groups'):
    /// each exists, or the provisioner may create it.
    async fn eks_roles(&self, iam: &Iam, role: Option<&str>, place: Option<&checks::Place>) -> Vec<Check> {
        let mut out = Vec::new();
        for (linked, service) in [
            ("AWSServiceRoleForAmazonEKS", "eks.amazonaws.com"),
            ("AWSServiceRoleForAmazonEKSNodegroup", "eks-nodegroup.amazonaws.com"),
        ] {
            let name = format!("service-linked role {linked}");
            let create = format!("aws iam create-service-linked-role --aws-service-name {service}");
            out.push(match iam.role_exists(linked).await {
                Ok(true) => Check::pass("components", name, "exists"),
                Ok(false) => {
                    let (Some(role), Some(place)) = (role, place) else {
                        out.push(Check::warn("components", name, "does not exist yet, and the stack names no provisioner role to ask about").fix(create));
                        continue;
                    };
                    let simulation = revscale_aws::iam::Simulation {
                        actions: vec!["iam:CreateServiceLinkedRole".into()],
                        resources: vec![format!(
                            "arn:{}:iam::{}:role/aws-service-role/{service}/{linked}",
                            place.partition, place.account
                        )],
                        context: vec![("iam:AWSServiceName".into(), vec![service.into()])],
                    };
                    match iam.simulate(role, &simulation).await {
                        Ok(r) if r.iter().all(revscale_aws::iam::Evaluation::allowed) => Check::pass(
                            "components",
                            name,
                            "does not exist yet; the provisioner may create it at the first climb",
                        ),
                        Ok(_) => Check::fail(
                            "components",
                            name,
                            "does not exist, and the provisioner may not create it: the first climb fails on it",
                        )
                        .fix(create),
                        Err(e) => Check::skip("components", name, format!("does not exist; cannot simulate whether the provisioner may create it: {e}"))
                            .fix(format!("allow iam:SimulatePrincipalPolicy to the caller, or {create}")),
                    }
                }
                Err(e) => Check::skip("components", name, format!("cannot read it: {e}")).fix("allow iam:GetRole to the caller"),
            });
        }
        out
    }

    // ---- operator API and state ---------------------------------------------------------

    pub async fn api(&self) -> Vec<Check> {
        let caller = match Iam::new(self.sdk).caller_arn().await {
            Ok(arn) => arn,
            Err(e) => {
                return vec![Check::fail("api", "your principal", format!("cannot tell who signs: {e}"))];
            }
        };
        let patterns = |name: &str, empty: &str| {
            let list = self.param(name, "");
            Patterns::parse(if list.trim().is_empty() { empty } else { &list })
        };
        // An empty ReaderPrincipals lets the API's readers be anyone IAM let in.
        match (
            patterns("ReaderPrincipals", "*"),
            patterns("OperatorPrincipals", ""),
            patterns("ApproverPrincipals", ""),
        ) {
            (Ok(r), Ok(o), Ok(a)) => checks::operator_roles(&caller, &r, &o, &a),
            (r, o, a) => {
                let bad = [r.err(), o.err(), a.err()]
                    .into_iter()
                    .flatten()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>();
                vec![Check::fail("api", "principal patterns", bad.join("; "))]
            }
        }
    }

    pub async fn state(&self, config: Option<&Config>) -> Vec<Check> {
        let table = match self.stack.output("TableName") {
            Ok(t) => t,
            Err(e) => return vec![Check::skip("state", "state", e.to_string())],
        };
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(self.sdk), table);
        let state = match store.load_state().await {
            Ok(Some(s)) => s.value,
            Ok(None) => {
                return vec![
                    Check::warn("state", "state", "none recorded: the evaluator has not run yet")
                        .fix("wait for the first daily evaluation (EvaluateSchedule), or see its log group"),
                ];
            }
            Err(e) => {
                return vec![Check::skip(
                    "state",
                    "state",
                    format!("cannot read it: {}", concise(&e.to_string())),
                )];
            }
        };
        let mut out = Vec::new();
        let deployment = Deployment::from_parameters(|name| self.stack.parameters.get(name).cloned());
        out.push(match config.map(|c| c.for_deployment(&deployment)) {
            Some(Ok(mut config)) => {
                // The stack's Mode parameter is what the functions run with (the file's
                // `mode` is not used: `config push` says so).
                if let Some(mode) = self.stack.parameters.get("Mode").and_then(|m| m.parse().ok()) {
                    config.mode = mode;
                }
                let (mode, source) = state.mode_in_force(&config);
                let source = match source {
                    revscale_engine::ModeSource::Operator => "set with `revscale mode`",
                    revscale_engine::ModeSource::Deployment => "the stack's Mode parameter",
                };
                Check::pass("state", "mode", format!("{mode} ({source})"))
            }
            _ => Check::skip("state", "mode", "no valid configuration to read the deployed mode with"),
        });
        out.push(match state.breaker.opened_on {
            None => Check::pass(
                "state",
                "circuit breaker",
                format!("closed ({} consecutive failure(s))", state.breaker.consecutive_failures),
            ),
            Some(opened) => Check::fail(
                "state",
                "circuit breaker",
                format!("open since {opened}: no provisioning runs"),
            )
            .fix("find the cause in the provision log group, then revscale breaker reset --stack <stack>"),
        });
        let now = chrono::Utc::now();
        out.push(match &state.provisioning {
            None => Check::pass("state", "provisioning lock", "free"),
            Some(run) => {
                let age = now - run.started_at;
                let text = format!("held by {} since {} ({} min)", run.decision_id, run.started_at.format("%Y-%m-%d %H:%M UTC"), age.num_minutes());
                if age > chrono::Duration::hours(2) {
                    Check::fail("state", "provisioning lock", format!("{text}: no run takes that long; every new change waits"))
                        .fix(format!(
                            "check the execution {} in Step Functions, repair what it left, then revscale provisioning release {} --component <id>=<cold|warm|hot> --reason \"...\" --stack {}",
                            run.decision_id, run.decision_id, self.stack.name
                        ))
                } else {
                    Check::pass("state", "provisioning lock", text)
                }
            }
        });
        out.push(match &state.pending_approval {
            None => Check::pass("state", "pending change", "none waiting"),
            Some(p) => {
                let days = (self.today - p.requested_on).num_days();
                let text = format!(
                    "level {} -> {} waits for approval since {} ({days} days)",
                    p.from, p.to, p.requested_on
                );
                if days > 7 {
                    Check::warn("state", "pending change", text)
                        .fix("revscale pending approve --stack <stack>, or reject it")
                } else {
                    Check::pass("state", "pending change", text)
                }
            }
        });
        out
    }
}

fn endpoint_answer(e: StripeError) -> EndpointAnswer {
    match e {
        StripeError::Api { status, message, .. } => EndpointAnswer::Refused { status, message },
        StripeError::Exhausted { source, .. } => endpoint_answer(*source),
        other => EndpointAnswer::Unreachable(other.to_string()),
    }
}

fn permission_check(name: &str, role: &str, results: &[revscale_aws::iam::Evaluation]) -> Check {
    let denied: Vec<&revscale_aws::iam::Evaluation> = results.iter().filter(|r| !r.allowed()).collect();
    if denied.is_empty() {
        return Check::pass(
            "components",
            format!("{name} permissions"),
            format!("the provisioner may do all {} actions on it", results.len()),
        );
    }
    let list = denied.iter().map(|r| format!("{} ({})", r.action, r.decision)).collect::<Vec<_>>().join(", ");
    let missing: BTreeSet<&str> =
        denied.iter().flat_map(|r| r.missing_context.iter().map(String::as_str)).collect();
    // A statement whose condition needs a key the simulation could not know: the
    // policy may allow it at run time.
    if !missing.is_empty() && denied.iter().all(|r| r.decision != "explicitDeny") {
        return Check::warn(
            "components",
            format!("{name} permissions"),
            format!(
                "the simulation denies {list}, for want of {}: check those statements of {role}'s policy",
                missing.into_iter().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    Check::fail(
        "components",
        format!("{name} permissions"),
        format!("the provisioner ({role}) may not: {list}; the first transition fails"),
    )
    .fix("sam deploy with this version's template (it grants every kind's actions), or add them to the role's policy (docs/iam.md)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sdk_errors_debug_dump_is_cut_to_its_code_and_message() {
        let dump = "service error: unhandled error (AccessDeniedException): Error { code: \"AccessDeniedException\" } (ServiceError(ServiceError { raw: Response { .. } }))";
        assert_eq!(
            concise(dump),
            "service error: unhandled error (AccessDeniedException): Error { code: \"AccessDeniedException\" }"
        );
        assert_eq!(concise("plain\nsecond line"), "plain");
    }
}
