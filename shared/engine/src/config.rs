//! `config/revenue_thresholds.yaml`: parsed leniently, validated strictly.
//!
//! Parsing yields a raw tree; [`Config::from_yaml`] turns it into a validated [`Config`]
//! or the complete list of problems, each with its key path. The engine only accepts a
//! validated `Config`, so it can never run on a broken one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{ComponentId, Mode};
use crate::money::{Currency, Money, Ratio};
use crate::runway::RunwayConfig;

pub use crate::drivers::eks_nodegroup::MAX_NODEGROUP_SIZE;
pub use crate::drivers::{DriverSpec, Kind, STACK_PARAMETERS, StackField, StackRule};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Level {
    pub number: u8,
    /// The YAML key, e.g. `level_2_growth`.
    pub name: String,
    pub min: Money,
    /// Inclusive upper end of the band; `None` for the top level ("10k+").
    pub max: Option<Money>,
    pub max_burn: Money,
    /// Closed months above `min` needed to climb to this level (0 for level 0).
    pub required_consecutive_months: u32,
    pub auto_enable: Vec<ComponentId>,
}

/// Where a component's bill arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// On the AWS bill: Cost Explorer's figure already holds it.
    Aws,
    /// Billed elsewhere (a SaaS subscription): revscale adds its configured cost.
    External,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    pub id: ComponentId,
    pub driver: DriverSpec,
    pub billing: Billing,
    pub hot_cost: Money,
    pub warm_cost: Money,
    pub depends_on: Vec<ComponentId>,
    /// The level whose `auto_enable` lists it.
    pub level: u8,
}

impl Component {
    pub fn is_always_on(&self) -> bool {
        matches!(self.driver, DriverSpec::AlwaysOn(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Safety {
    /// Block an activation whose projected cost exceeds this share of revenue (0.90).
    pub block_ratio: Ratio,
    /// Warn when cost reaches this share of MRR (0.80).
    pub alert_ratio: Ratio,
    /// No automatic change may add more than this monthly cost; only an approved
    /// override can.
    pub auto_activation_cost_limit: Money,
    /// In `auto` mode, a level change adding more than this monthly cost waits for a
    /// human approval.
    pub approval_threshold: Money,
    /// A request (override, drain, pending level change) can be approved for this many
    /// days after it was made, and a given approval is acted on within as many days:
    /// after that the approver would be approving a situation that no longer exists.
    pub approval_expiry_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Churn {
    pub hysteresis: Ratio,
    pub grace_days: u32,
    pub cooldown_days: u32,
    pub floor_level: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerConfig {
    pub failures: u32,
    pub cooldown_days: u32,
}

/// A validated configuration. Only [`Config::from_yaml`] and [`Config::validate`]
/// build one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub currency: Currency,
    pub mode: Mode,
    /// Indexed by level number.
    pub levels: Vec<Level>,
    pub components: BTreeMap<ComponentId, Component>,
    /// Every component, dependencies first; ties broken by level then key.
    pub activation_order: Vec<ComponentId>,
    pub safety: Safety,
    pub churn: Churn,
    pub prewarm_days: u32,
    pub breaker: BreakerConfig,
    /// The runway guard, when the configuration has a `runway` section. Left out of
    /// the serialised form (and so of the fingerprint) when absent, so that adding the
    /// guard changed no decision id of a configuration without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runway: Option<RunwayConfig>,
    /// SHA-256 of everything above, computed once: decision ids include it without
    /// re-serialising the config on every evaluation.
    #[serde(skip)]
    pub fingerprint: [u8; 32],
}

/// One thing wrong with a config, at a key path such as
/// `levels.level_2_growth.revenue_range.min`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration ({} problem(s)):\n{}", .0.len(), .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError(pub Vec<Problem>);

// ---------------------------------------------------------------------------------
// Raw shape, as written in YAML.

/// A number written in YAML (integer, decimal or quoted), kept exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Amount(pub Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Amount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Amount, E> {
                Ok(Amount(Decimal::from(v)))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Amount, E> {
                Ok(Amount(Decimal::from(v)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Amount, E> {
                // `f64`'s Display is the shortest string that round-trips, so 0.9 reads
                // back as exactly 0.9 rather than 0.90000000000000002.
                Decimal::from_str(&v.to_string()).map(Amount).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Amount, E> {
                Decimal::from_str(v.trim()).map(Amount).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    currency: String,
    #[serde(default)]
    mode: Option<Mode>,
    levels: BTreeMap<String, RawLevel>,
    components: BTreeMap<String, RawComponent>,
    safety: RawSafety,
    churn: RawChurn,
    prewarm_days: u32,
    circuit_breaker: RawBreaker,
    #[serde(default)]
    runway: Option<RawRunway>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunway {
    min_months: u32,
    monthly_fixed_burn: Amount,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevel {
    level: u8,
    revenue_range: RawRange,
    max_burn: Amount,
    #[serde(default)]
    required_consecutive_months: Option<u32>,
    #[serde(default)]
    auto_enable: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    min: Amount,
    #[serde(default)]
    max: Option<Amount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    driver: DriverSpec,
    #[serde(default)]
    billing: Option<Billing>,
    cost: RawCost,
    #[serde(default)]
    depends_on: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCost {
    hot: Amount,
    warm: Amount,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSafety {
    block_ratio: Amount,
    alert_ratio: Amount,
    auto_activation_cost_limit: Amount,
    approval_threshold: Amount,
    #[serde(default)]
    approval_expiry_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChurn {
    hysteresis: Amount,
    grace_days: u32,
    cooldown_days: u32,
    #[serde(default)]
    floor_level: u8,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    failures: u32,
    cooldown_days: u32,
}

// ---------------------------------------------------------------------------------

/// Upper bounds of the counts and durations: generous for any real company, and far
/// below what the engine's date arithmetic could overflow on (a window of 60,000,000
/// days used to pass validation and panic in `evaluate`).
pub const MAX_GRACE_DAYS: u32 = 365;
pub const MAX_COOLDOWN_DAYS: u32 = 3 * 365;
pub const MAX_CONSECUTIVE_MONTHS: u32 = 36;
pub const MAX_BREAKER_FAILURES: u32 = 100;
pub const MAX_APPROVAL_EXPIRY_DAYS: u32 = 90;
pub const DEFAULT_APPROVAL_EXPIRY_DAYS: u32 = 7;
/// Ten years: a minimum runway above that guards nothing a forecast could know.
pub const MAX_RUNWAY_MONTHS: u32 = 120;

/// The shipped default, compiled in so the simulator works from any directory.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("../../../config/revenue_thresholds.yaml");

/// The manifests the shipped configuration names (`config/examples/manifests/`),
/// compiled in with it, by file name.
pub const SHIPPED_MANIFESTS: &[(&str, &str)] = &[
    ("vault.yaml", include_str!("../../../config/examples/manifests/vault.yaml")),
    ("tee.yaml", include_str!("../../../config/examples/manifests/tee.yaml")),
    ("escrow.yaml", include_str!("../../../config/examples/manifests/escrow.yaml")),
];

/// A file the shipped configuration names, as `config/` names it
/// (`examples/manifests/vault.yaml`) or `config/examples/` does (`manifests/vault.yaml`),
/// from the copy compiled in; any other file is not read.
pub fn shipped_file(path: &str) -> Result<String, String> {
    let name = path.strip_prefix("examples/").unwrap_or(path).strip_prefix("manifests/");
    SHIPPED_MANIFESTS
        .iter()
        .find(|(file, _)| Some(*file) == name)
        .map(|(_, text)| (*text).to_string())
        .ok_or_else(|| "no file is read here (only the shipped manifests are built in)".into())
}

impl Config {
    /// The configuration in `text`, which reads no file: a file it names
    /// (`template_file`, `manifests_file`) must already be read into its body
    /// (`template_body`, `manifests_body`), unless it is one of the shipped manifests,
    /// read from the copies compiled in ([`shipped_file`]). A pushed configuration is
    /// read with its files by `revscale_aws::runtime_config::Pushed::config`.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        Self::from_yaml_reading(text, &shipped_file)
    }

    /// The configuration in `text`, with the files it names (a CloudFormation
    /// template, a workload's manifests) read through `read` (the caller resolves them relative to the
    /// configuration file; the engine reads nothing itself).
    pub fn from_yaml_reading(
        text: &str,
        read: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut raw: RawConfig = serde_norway::from_str(text).map_err(|e| {
            let location = e
                .location()
                .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                .unwrap_or_default();
            ConfigError(vec![Problem { path: String::new(), message: format!("{e}{location}") }])
        })?;
        let mut unread = Vec::new();
        for (id, component) in &mut raw.components {
            let Some(named) = component.driver.as_kind_mut().named_file() else { continue };
            if named.body.is_none()
                && let Some(file) = named.file.as_deref()
            {
                match read(file) {
                    Ok(body) => *named.body = Some(body),
                    Err(e) => unread.push(Problem {
                        path: format!("components.{id}.driver.{}", named.key),
                        message: format!("cannot read '{file}': {e}"),
                    }),
                }
            }
        }
        if !unread.is_empty() {
            return Err(ConfigError(unread));
        }
        validate(raw)
    }

    /// The configuration without where its files were read from (a path beside the
    /// file, the parameter `config push` stored one in): the same configuration either
    /// way, as its fingerprint already says.
    pub fn without_file_names(mut self) -> Config {
        for component in self.components.values_mut() {
            if let Some(named) = component.driver.as_kind_mut().named_file() {
                named.file.take();
            }
        }
        self
    }

    pub fn default_config() -> Result<Config, ConfigError> {
        Self::from_yaml(DEFAULT_CONFIG_YAML)
    }

    pub fn level(&self, number: u8) -> &Level {
        // Levels are validated to be 0..n with n >= 1, and callers only pass numbers
        // they got from this config; clamp instead of panicking on a stale one.
        let idx = usize::from(number).min(self.levels.len() - 1);
        &self.levels[idx]
    }

    pub fn top_level(&self) -> u8 {
        (self.levels.len() - 1) as u8
    }

    /// The level whose band holds `mrr`: the highest level with `min <= mrr`.
    pub fn level_for(&self, mrr: Money) -> u8 {
        self.levels.iter().rev().find(|l| mrr.minor >= l.min.minor).map_or(0, |l| l.number)
    }

    /// Components HOT at `level`: everything enabled by it and the levels below.
    pub fn components_up_to(&self, level: u8) -> BTreeSet<ComponentId> {
        self.levels
            .iter()
            .take_while(|l| l.number <= level)
            .flat_map(|l| l.auto_enable.iter().cloned())
            .collect()
    }

    pub fn component(&self, id: &ComponentId) -> Option<&Component> {
        self.components.get(id)
    }

    pub fn zero(&self) -> Money {
        Money::zero(self.currency)
    }
}

/// Collects every problem with its key path, so that one run reports them all.
struct Checker {
    currency: Currency,
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), message: message.into() });
    }

    fn money(&mut self, path: &str, amount: Amount) -> Money {
        match Money::from_decimal(amount.0, self.currency) {
            Ok(m) if m.is_negative() => {
                self.problem(path, format!("must not be negative (got {})", amount.0));
                m
            }
            Ok(m) => m,
            Err(e) => {
                self.problem(path, e.to_string());
                Money::zero(self.currency)
            }
        }
    }

    fn ratio(&mut self, path: &str, amount: Amount) -> Ratio {
        match Ratio::from_decimal(amount.0) {
            Ok(r) if r.basis_points > 10_000 => {
                self.problem(path, format!("must be between 0 and 1 (got {})", amount.0));
                r
            }
            Ok(r) => r,
            Err(_) => {
                self.problem(
                    path,
                    format!("must be between 0 and 1 with at most 4 decimals (got {})", amount.0),
                );
                Ratio::from_basis_points(0)
            }
        }
    }

    /// The levels, sorted by their declared number, each with its band, burn and debounce.
    fn levels(&mut self, raw: &RawConfig) -> Vec<Level> {
        let mut by_number: BTreeMap<u8, Vec<&String>> = BTreeMap::new();
        for (name, level) in &raw.levels {
            by_number.entry(level.level).or_default().push(name);
        }
        let mut levels: Vec<Level> = Vec::new();
        if raw.levels.is_empty() {
            self.problem("levels", "at least one level is required");
        }
        for (number, names) in &by_number {
            if names.len() > 1 {
                let list = names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ");
                self.problem("levels", format!("level {number} is declared more than once ({list})"));
            }
        }
        let expected: Vec<u8> = (0..by_number.len() as u8).collect();
        let declared: Vec<u8> = by_number.keys().copied().collect();
        if declared != expected && !raw.levels.is_empty() {
            self.problem(
                "levels",
                format!("level numbers must be 0, 1, 2, ... with no gaps; found {declared:?}"),
            );
        }
        for (number, names) in &by_number {
            let name = names[0];
            let raw_level = &raw.levels[name];
            let path = format!("levels.{name}");
            let min = self.money(&format!("{path}.revenue_range.min"), raw_level.revenue_range.min);
            let max =
                raw_level.revenue_range.max.map(|m| self.money(&format!("{path}.revenue_range.max"), m));
            let max_burn = self.money(&format!("{path}.max_burn"), raw_level.max_burn);
            if let Some(max) = max
                && max.minor < min.minor
            {
                self.problem(format!("{path}.revenue_range"), format!("max {max} is below min {min}"));
            }
            let required = match raw_level.required_consecutive_months {
                Some(0) if *number > 0 => {
                    self.problem(
                        format!("{path}.required_consecutive_months"),
                        "must be at least 1 for a level above 0 (debounce)",
                    );
                    1
                }
                Some(n) if n > MAX_CONSECUTIVE_MONTHS => {
                    self.problem(
                        format!("{path}.required_consecutive_months"),
                        format!("must be at most {MAX_CONSECUTIVE_MONTHS} (got {n})"),
                    );
                    n
                }
                Some(n) => n,
                None if *number > 0 => {
                    self.problem(
                        format!("{path}.required_consecutive_months"),
                        "missing debounce: every level above 0 needs required_consecutive_months",
                    );
                    1
                }
                None => 0,
            };
            levels.push(Level {
                number: *number,
                name: name.clone(),
                min,
                max,
                max_burn,
                required_consecutive_months: required,
                auto_enable: raw_level.auto_enable.iter().cloned().map(ComponentId).collect(),
            });
        }

        levels
    }

    /// Bands start at 0, are contiguous in whole currency units and strictly increase.
    fn bands(&mut self, levels: &[Level]) {
        if let Some(first) = levels.first()
            && !first.min.is_zero()
        {
            self.problem(
                format!("levels.{}.revenue_range.min", first.name),
                format!("the lowest level must start at 0 (got {})", first.min),
            );
        }
        for pair in levels.windows(2) {
            let (low, high) = (&pair[0], &pair[1]);
            let path = format!("levels.{}.revenue_range.min", high.name);
            if high.min.minor <= low.min.minor {
                self.problem(
                    path.clone(),
                    format!(
                        "levels must increase: {} min {} is not above {} min {}",
                        high.name, high.min, low.name, low.min
                    ),
                );
            }
            match low.max {
                None => self.problem(
                    format!("levels.{}.revenue_range.max", low.name),
                    format!("only the top level may omit max; {} is below {}", low.name, high.name),
                ),
                Some(max) if high.min.minor <= max.minor => self.problem(
                    path,
                    format!("band overlaps {}: {} min {} <= {max}", low.name, high.name, high.min),
                ),
                Some(max) if high.min.minor > max.minor + 100 => self.problem(
                    path,
                    format!("gap after {}: nothing covers revenue between {max} and {}", low.name, high.min),
                ),
                Some(_) => {}
            }
            if high.max_burn.minor <= low.max_burn.minor {
                self.problem(
                    format!("levels.{}.max_burn", high.name),
                    format!("max burn must increase with the level ({} <= {})", high.max_burn, low.max_burn),
                );
            }
        }
        if let Some(top) = levels.last()
            && top.max.is_some()
            && levels.len() > 1
        {
            // A capped top band would leave revenue above it with no level at all.
            self.problem(
                format!("levels.{}.revenue_range.max", top.name),
                "the top level must be open-ended (omit max)",
            );
        }
    }

    /// Which level enables each component: exactly one, and one that exists.
    fn owners<'r>(&mut self, raw: &'r RawConfig, levels: &[Level]) -> BTreeMap<&'r str, u8> {
        let mut owner: BTreeMap<&'r str, u8> = BTreeMap::new();
        for level in levels {
            for (i, id) in level.auto_enable.iter().enumerate() {
                let path = format!("levels.{}.auto_enable[{i}]", level.name);
                match raw.components.get_key_value(id.as_str()) {
                    None => self.problem(path, format!("unknown component '{id}'")),
                    Some((key, _)) => {
                        if let Some(prev) = owner.insert(key.as_str(), level.number) {
                            self.problem(path, format!("'{id}' is already enabled by level {prev}"));
                        }
                    }
                }
            }
        }
        owner
    }

    /// One component: its costs, where it is billed, its level, its driver and its
    /// dependencies.
    fn component(
        &mut self,
        key: &str,
        rc: &RawComponent,
        raw: &RawConfig,
        owner: &BTreeMap<&str, u8>,
    ) -> Component {
        let path = format!("components.{key}");
        let hot_cost = self.money(&format!("{path}.cost.hot"), rc.cost.hot);
        let warm_cost = self.money(&format!("{path}.cost.warm"), rc.cost.warm);
        if warm_cost.minor > hot_cost.minor && !hot_cost.is_negative() {
            self.problem(
                format!("{path}.cost.warm"),
                format!("WARM cost {warm_cost} is above HOT cost {hot_cost}"),
            );
        }
        // A cost that nobody bills is not a cost: say where it is billed, or the
        // evaluator would leave it out of the production cost (or count it twice).
        let billing = rc.billing.unwrap_or_else(|| {
            if !hot_cost.is_zero() || !warm_cost.is_zero() {
                self.problem(
                    format!("{path}.billing"),
                    "say where this component is billed: aws (Cost Explorer sees it) or external (revscale adds its configured cost)",
                );
            }
            Billing::Aws
        });
        let level = match owner.get(key) {
            Some(l) => *l,
            None => {
                self.problem(path.clone(), "no level's auto_enable lists this component");
                0
            }
        };
        if matches!(rc.driver, DriverSpec::AlwaysOn(_)) && level != 0 {
            self.problem(
                format!("{path}.driver"),
                format!("an always_on component belongs to level 0, not level {level}"),
            );
        }
        for (key, message) in rc.driver.as_kind().check() {
            let at = if key.is_empty() { format!("{path}.driver") } else { format!("{path}.driver.{key}") };
            self.problem(at, message);
        }
        // The workload carries the component's id as a label value, which Kubernetes
        // restricts: an id it refuses could never be labelled, so never switched.
        if let DriverSpec::KubernetesWorkload(workload) = &rc.driver {
            if let Err(why) = crate::drivers::kubernetes_workload::label_value(key) {
                self.problem(
                    path.clone(),
                    format!("a kubernetes_workload component's id is its workload's label value: {why}"),
                );
            }
            // revscale labels what it applies with the component; a document labelled
            // for another would be taken by the other's drift check and orphans rule.
            for manifest in workload.manifests().unwrap_or_default() {
                if let Some(other) = manifest.component_label().filter(|label| *label != key) {
                    self.problem(
                        format!("{path}.driver.manifests_file"),
                        format!(
                            "{} carries the label {}={other}: revscale labels it {key} (leave the label out)",
                            manifest.describe(),
                            crate::drivers::COMPONENT_TAG
                        ),
                    );
                }
            }
        }
        for (i, dep) in rc.depends_on.iter().enumerate() {
            let dep_path = format!("{path}.depends_on[{i}]");
            match raw.components.get(dep) {
                None => self.problem(dep_path, format!("unknown component '{dep}'")),
                Some(_) => {
                    if let Some(dep_level) = owner.get(dep.as_str())
                        && *dep_level > level
                    {
                        self.problem(
                            dep_path,
                            format!(
                                "'{key}' (level {level}) cannot depend on '{dep}' of the higher level {dep_level}"
                            ),
                        );
                    }
                }
            }
        }
        if let DriverSpec::EksNodegroup(nodegroup) = &rc.driver {
            let cluster_name = &nodegroup.cluster_name;
            let cluster_dep = rc.depends_on.iter().any(|d| {
                matches!(raw.components.get(d).map(|c| &c.driver),
                    Some(DriverSpec::EksCluster(cluster)) if &cluster.cluster_name == cluster_name)
            });
            if !cluster_dep {
                self.problem(
                    format!("{path}.depends_on"),
                    format!(
                        "a node group of cluster '{cluster_name}' must depend on the eks_cluster component that creates it"
                    ),
                );
            }
        }
        Component {
            id: ComponentId(key.to_string()),
            driver: rc.driver.clone(),
            billing,
            hot_cost,
            warm_cost,
            depends_on: rc.depends_on.iter().cloned().map(ComponentId).collect(),
            level,
        }
    }

    /// Dependencies first; a cycle is a problem.
    fn activation_order(&mut self, components: &BTreeMap<ComponentId, Component>) -> Vec<ComponentId> {
        match topological_order(components) {
            Ok(order) => order,
            Err(cycle) => {
                self.problem(
                    "components",
                    format!(
                        "dependency cycle: {}",
                        cycle.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(" -> ")
                    ),
                );
                Vec::new()
            }
        }
    }

    fn safety(&mut self, raw: &RawSafety) -> Safety {
        let block_ratio = self.ratio("safety.block_ratio", raw.block_ratio);
        let alert_ratio = self.ratio("safety.alert_ratio", raw.alert_ratio);
        if alert_ratio > block_ratio {
            self.problem(
                "safety.alert_ratio",
                format!("alert ratio {alert_ratio} is above block ratio {block_ratio}"),
            );
        }
        Safety {
            block_ratio,
            alert_ratio,
            auto_activation_cost_limit: self
                .money("safety.auto_activation_cost_limit", raw.auto_activation_cost_limit),
            approval_threshold: self.money("safety.approval_threshold", raw.approval_threshold),
            approval_expiry_days: self.days(
                "safety.approval_expiry_days",
                raw.approval_expiry_days.unwrap_or(DEFAULT_APPROVAL_EXPIRY_DAYS),
                1..=MAX_APPROVAL_EXPIRY_DAYS,
            ),
        }
    }

    /// A count or a duration within `range`: every one has an upper bound, so that no
    /// file that validates can overflow the engine's date arithmetic.
    fn days(&mut self, path: &str, value: u32, range: std::ops::RangeInclusive<u32>) -> u32 {
        if !range.contains(&value) {
            self.problem(
                path,
                format!("must be between {} and {} (got {value})", range.start(), range.end()),
            );
        }
        value
    }

    fn churn(&mut self, raw: &RawChurn, levels: usize) -> Churn {
        let hysteresis = self.ratio("churn.hysteresis", raw.hysteresis);
        if raw.grace_days == 0 {
            self.problem("churn.grace_days", "must be at least 1");
        } else {
            self.days("churn.grace_days", raw.grace_days, 1..=MAX_GRACE_DAYS);
        }
        self.days("churn.cooldown_days", raw.cooldown_days, 0..=MAX_COOLDOWN_DAYS);
        if usize::from(raw.floor_level) >= levels.max(1) {
            self.problem("churn.floor_level", format!("level {} does not exist", raw.floor_level));
        }
        Churn {
            hysteresis,
            grace_days: raw.grace_days,
            cooldown_days: raw.cooldown_days,
            floor_level: raw.floor_level,
        }
    }

    fn runway(&mut self, raw: Option<&RawRunway>) -> Option<RunwayConfig> {
        let raw = raw?;
        if raw.min_months == 0 {
            self.problem(
                "runway.min_months",
                "must be at least 1 (leave the runway section out for no guard)",
            );
        } else {
            self.days("runway.min_months", raw.min_months, 1..=MAX_RUNWAY_MONTHS);
        }
        let monthly_fixed_burn = self.money("runway.monthly_fixed_burn", raw.monthly_fixed_burn);
        Some(RunwayConfig { min_months: raw.min_months, monthly_fixed_burn })
    }

    fn breaker_and_prewarm(&mut self, raw: &RawConfig) {
        if raw.circuit_breaker.failures == 0 {
            self.problem("circuit_breaker.failures", "must be at least 1");
        } else {
            self.days("circuit_breaker.failures", raw.circuit_breaker.failures, 1..=MAX_BREAKER_FAILURES);
        }
        self.days("circuit_breaker.cooldown_days", raw.circuit_breaker.cooldown_days, 0..=MAX_COOLDOWN_DAYS);
        if raw.prewarm_days > 31 {
            self.problem("prewarm_days", format!("must be at most 31 (got {})", raw.prewarm_days));
        }
    }
}

fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
    let mut check = Checker { currency: Currency::EUR, problems: Vec::new() };
    match raw.currency.parse::<Currency>() {
        Ok(c) => check.currency = c,
        Err(e) => check.problem("currency", e.to_string()),
    }
    let currency = check.currency;
    let levels = check.levels(&raw);
    check.bands(&levels);
    let owner = check.owners(&raw, &levels);
    let components: BTreeMap<ComponentId, Component> = raw
        .components
        .iter()
        .map(|(key, rc)| (ComponentId(key.clone()), check.component(key, rc, &raw, &owner)))
        .collect();
    let activation_order = check.activation_order(&components);
    let safety = check.safety(&raw.safety);
    let churn = check.churn(&raw.churn, levels.len());
    check.breaker_and_prewarm(&raw);
    let runway = check.runway(raw.runway.as_ref());
    let problems = check.problems;

    if !problems.is_empty() {
        return Err(ConfigError(problems));
    }
    let mut config = Config {
        currency,
        mode: raw.mode.unwrap_or(Mode::Auto),
        levels,
        components,
        activation_order,
        safety,
        churn,
        prewarm_days: raw.prewarm_days,
        breaker: BreakerConfig {
            failures: raw.circuit_breaker.failures,
            cooldown_days: raw.circuit_breaker.cooldown_days,
        },
        runway,
        fingerprint: [0; 32],
    };
    // Every workload is on the stack's cluster (its cluster_name must be the stack's):
    // the cluster revscale creates grants its roles their namespaces.
    let namespaces: BTreeSet<String> = config
        .components
        .values()
        .filter_map(|c| match &c.driver {
            DriverSpec::KubernetesWorkload(w) => Some(w.namespace.clone()),
            _ => None,
        })
        .collect();
    let creates_cluster = config.components.values().any(|c| matches!(c.driver, DriverSpec::EksCluster(_)));
    for component in config.components.values_mut() {
        match &mut component.driver {
            DriverSpec::EksCluster(cluster) => {
                cluster.workload_namespaces = namespaces.iter().cloned().collect()
            }
            DriverSpec::KubernetesWorkload(workload) => {
                workload.access_namespaces = creates_cluster.then(|| namespaces.iter().cloned().collect());
            }
            _ => {}
        }
    }
    // A workload's manifests as one line of JSON per document, comments and layout
    // aside: what `revscale config push` sends, so the pushed copy is the same
    // configuration as the file.
    for component in config.components.values_mut() {
        if let DriverSpec::KubernetesWorkload(workload) = &mut component.driver
            && let Ok(documents) = workload.manifests()
            && !documents.is_empty()
        {
            let lines: Vec<String> = documents.iter().map(|d| d.object.to_string()).collect();
            workload.manifests_body = Some(lines.join("\n---\n"));
        }
    }
    config.fingerprint = fingerprint(&config);
    Ok(config)
}

fn fingerprint(config: &Config) -> [u8; 32] {
    // Where a file was read from is no part of the configuration: the file and the
    // pushed copy that carries its text (`revscale config push`) decide alike.
    let canonical = config.clone().without_file_names();
    // Serialising plain data cannot fail; an empty buffer would still be deterministic.
    let canonical = serde_json::to_vec(&canonical).unwrap_or_default();
    Sha256::digest(&canonical).into()
}

/// What the deployment (the stack's parameters) decides about the resources revscale
/// may touch: its IAM policy allows this cluster, these roles, this flag path and
/// these stack names only. Keyed by stack parameter ([`STACK_PARAMETERS`]); each kind
/// says which of its fields a parameter decides ([`Kind::stack_fields`]). The
/// configuration leaves them out, so there is one source; a value it does write must
/// be the deployment's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deployment(pub BTreeMap<String, String>);

impl Deployment {
    /// The deployment from a lookup by stack parameter name (the CLI's, from the
    /// stack's parameters) or by environment variable (the functions').
    pub fn from_parameters(value_of: impl Fn(&str) -> Option<String>) -> Deployment {
        Deployment(
            STACK_PARAMETERS
                .iter()
                .filter_map(|(parameter, _)| value_of(parameter).map(|v| (parameter.to_string(), v)))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        )
    }

    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Deployment {
        Deployment::from_parameters(|parameter| {
            STACK_PARAMETERS.iter().find(|(p, _)| *p == parameter).and_then(|(_, env)| var(env))
        })
    }

    pub fn get(&self, parameter: &str) -> Option<&str> {
        self.0.get(parameter).map(String::as_str)
    }
}

impl Config {
    /// This configuration with the deployment's values filled in. Problems: a value
    /// that differs from the deployment's (its IAM policy would refuse it at the first
    /// transition, months later), a name outside the deployment's prefix, or a field
    /// the deployment does not set at all.
    pub fn for_deployment(&self, deployment: &Deployment) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut config = self.clone();
        for (id, component) in &mut config.components {
            let path = format!("components.{id}.driver");
            for field in component.driver.as_kind_mut().stack_fields() {
                let StackField { key, value, parameter, rule } = field;
                // Written in the file or not: the stack's policy grants nothing for a
                // parameter it does not set (no iam:PassRole without CloudFormationRoleArn),
                // so the first transition would be refused months later.
                let Some(deployed) = deployment.get(parameter) else {
                    problems.push(Problem {
                        path: format!("{path}.{key}"),
                        message: format!(
                            "the stack sets no {parameter}, which this driver needs (its IAM policy is scoped to it)"
                        ),
                    });
                    continue;
                };
                match rule {
                    StackRule::Equals if value.is_empty() => *value = deployed.to_string(),
                    StackRule::Equals if value != deployed => problems.push(Problem {
                        path: format!("{path}.{key}"),
                        message: format!(
                            "'{value}' differs from the stack's {parameter} '{deployed}': leave it out, the stack sets it"
                        ),
                    }),
                    StackRule::Equals => {}
                    StackRule::UnderPrefix => {
                        let prefix = deployed.trim_end_matches('/');
                        let under = if prefix.starts_with('/') {
                            value.starts_with(&format!("{prefix}/"))
                        } else {
                            value.starts_with(prefix) && value.len() > prefix.len()
                        };
                        if !under {
                            problems.push(Problem {
                                path: format!("{path}.{key}"),
                                message: format!(
                                    "'{value}' is outside the stack's {parameter} '{deployed}': the provisioner may only touch names under it"
                                ),
                            });
                        }
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        config.fingerprint = fingerprint(&config);
        Ok(config)
    }
}

/// Dependencies first; among ready components the lower level, then the key, goes
/// first, so the order is deterministic. On a cycle, returns the components in it.
fn topological_order(
    components: &BTreeMap<ComponentId, Component>,
) -> Result<Vec<ComponentId>, Vec<ComponentId>> {
    let mut remaining: BTreeMap<&ComponentId, BTreeSet<&ComponentId>> = components
        .iter()
        .map(|(id, c)| (id, c.depends_on.iter().filter(|d| components.contains_key(*d)).collect()))
        .collect();
    let mut order = Vec::with_capacity(components.len());
    while !remaining.is_empty() {
        let next = remaining
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(id, _)| *id)
            .min_by_key(|id| (components[*id].level, (*id).clone()));
        let Some(next) = next else {
            // Every remaining component waits on another remaining one: walk the
            // dependencies until one repeats, and report just that loop.
            let mut path: Vec<&ComponentId> = Vec::new();
            let mut at = *remaining.keys().next().ok_or_else(Vec::new)?;
            while !path.contains(&at) {
                path.push(at);
                at = *remaining[at].iter().next().ok_or_else(Vec::new)?;
            }
            let start = path.iter().position(|id| *id == at).unwrap_or(0);
            let mut cycle: Vec<ComponentId> = path[start..].iter().map(|id| (*id).clone()).collect();
            cycle.push(at.clone());
            return Err(cycle);
        };
        remaining.remove(next);
        for deps in remaining.values_mut() {
            deps.remove(next);
        }
        order.push(next.clone());
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(yaml: &str) -> Vec<Problem> {
        Config::from_yaml(yaml).expect_err("config should be invalid").0
    }

    fn has(problems: &[Problem], path: &str, needle: &str) -> bool {
        problems.iter().any(|p| p.path == path && p.message.contains(needle))
    }

    fn default_with(edit: impl FnOnce(&mut serde_norway::Value)) -> String {
        let mut value: serde_norway::Value = serde_norway::from_str(DEFAULT_CONFIG_YAML).unwrap();
        edit(&mut value);
        serde_norway::to_string(&value).unwrap()
    }

    fn set(value: &mut serde_norway::Value, path: &[&str], new: serde_norway::Value) {
        let mut cur = value;
        for key in &path[..path.len() - 1] {
            cur = cur.get_mut(*key).unwrap_or_else(|| panic!("no key {key}"));
        }
        cur.as_mapping_mut().unwrap().insert(path[path.len() - 1].into(), new);
    }

    #[test]
    fn a_component_with_a_cost_must_say_where_it_is_billed() {
        let yaml = DEFAULT_CONFIG_YAML.replacen("    billing: external\n", "", 1);
        let err = Config::from_yaml(&yaml).unwrap_err().to_string();
        assert!(err.contains("components.hume_ai.billing: say where this component is billed"), "{err}");
        let c = Config::default_config().unwrap();
        let billed = |id: &str| c.components[&ComponentId::new(id)].billing;
        assert_eq!((billed("hume_ai"), billed("k8s_workers")), (Billing::External, Billing::Aws));
    }

    #[test]
    fn default_config_encodes_adr_017_table() {
        let c = Config::default_config().unwrap();
        let eur = |n| Money::whole(n, Currency::EUR);
        let bands: Vec<_> =
            c.levels.iter().map(|l| (l.min, l.max, l.max_burn, l.required_consecutive_months)).collect();
        assert_eq!(
            bands,
            vec![
                (eur(0), Some(eur(449)), eur(450), 0),
                (eur(450), Some(eur(799)), eur(800), 1),
                (eur(800), Some(eur(2999)), eur(3000), 2),
                (eur(3000), Some(eur(9999)), eur(10000), 2),
                (eur(10000), None, eur(35000), 3),
            ]
        );
        // The ADR's table, with each workload's node group a component of its own
        // (vault_nodes, tee_nodes) that comes up with it.
        let enabled: Vec<Vec<&str>> =
            c.levels.iter().map(|l| l.auto_enable.iter().map(|c| c.as_str()).collect()).collect();
        assert_eq!(
            enabled,
            vec![
                vec!["sqlite", "ollama"],
                vec!["eks_control_plane"],
                vec!["hume_ai", "k8s_workers"],
                vec!["vault_nodes", "vault_ha", "dat_iq"],
                vec!["tee_nodes", "tee", "full_escrow"],
            ]
        );
        assert_eq!(c.safety.block_ratio, Ratio::from_basis_points(9000));
        assert_eq!(c.safety.alert_ratio, Ratio::from_basis_points(8000));
        assert_eq!(c.churn.hysteresis, Ratio::from_basis_points(1000));
        assert_eq!((c.churn.grace_days, c.churn.cooldown_days), (7, 30));
        assert_eq!(c.mode, Mode::Auto);
        assert_eq!(c.currency, Currency::EUR);
        assert_eq!(
            c.components[&ComponentId::new("k8s_workers")].depends_on,
            vec![ComponentId::new("eks_control_plane")]
        );
    }

    #[test]
    fn every_level_is_affordable_at_the_bottom_of_its_band_with_ten_percent_other_costs() {
        let c = Config::default_config().unwrap();
        for level in &c.levels[1..] {
            let other = level.min.minor / 10;
            let managed: i64 =
                c.components_up_to(level.number).iter().map(|id| c.components[id].hot_cost.minor).sum();
            let projected = Money::from_minor(other + managed, c.currency);
            let limit = level.min.times(c.safety.block_ratio);
            assert!(projected.minor <= limit.minor, "level {} projected {projected} > {limit}", level.number);
            assert!(projected.minor <= level.max_burn.minor);
        }
    }

    #[test]
    fn activation_order_puts_dependencies_first() {
        let c = Config::default_config().unwrap();
        let pos = |id: &str| c.activation_order.iter().position(|c| c.as_str() == id).unwrap();
        assert!(pos("eks_control_plane") < pos("k8s_workers"));
        assert!(pos("k8s_workers") < pos("vault_ha"));
        assert_eq!(c.activation_order.len(), c.components.len());
    }

    #[test]
    fn level_for_picks_the_band_holding_the_amount() {
        let c = Config::default_config().unwrap();
        let eur = |s| Money::parse(s, Currency::EUR).unwrap();
        assert_eq!(c.level_for(eur("0")), 0);
        assert_eq!(c.level_for(eur("449.99")), 0);
        assert_eq!(c.level_for(eur("450")), 1);
        assert_eq!(c.level_for(eur("2999.99")), 2);
        assert_eq!(c.level_for(eur("1000000")), 4);
        assert_eq!(c.level(99).number, 4);
    }

    #[test]
    fn overlapping_bands_are_reported_with_their_path() {
        let yaml =
            default_with(|v| set(v, &["levels", "level_2_growth", "revenue_range", "min"], 700.into()));
        let p = problems(&yaml);
        assert!(has(&p, "levels.level_2_growth.revenue_range.min", "overlaps level_1_launch"), "{p:?}");
    }

    #[test]
    fn gapped_bands_are_reported() {
        let yaml =
            default_with(|v| set(v, &["levels", "level_2_growth", "revenue_range", "min"], 900.into()));
        assert!(has(&problems(&yaml), "levels.level_2_growth.revenue_range.min", "gap after level_1_launch"));
    }

    #[test]
    fn non_increasing_levels_are_reported() {
        let yaml = default_with(|v| {
            set(v, &["levels", "level_2_growth", "revenue_range", "min"], 300.into());
            set(v, &["levels", "level_2_growth", "max_burn"], 500.into());
        });
        let p = problems(&yaml);
        assert!(has(&p, "levels.level_2_growth.revenue_range.min", "levels must increase"), "{p:?}");
        assert!(has(&p, "levels.level_2_growth.max_burn", "must increase"), "{p:?}");
    }

    #[test]
    fn unknown_components_are_reported() {
        let yaml = default_with(|v| {
            set(v, &["levels", "level_1_launch", "auto_enable"], vec!["eks_control_plane", "kafka"].into());
            set(v, &["components", "hume_ai", "depends_on"], vec!["redis"].into());
        });
        let p = problems(&yaml);
        assert!(has(&p, "levels.level_1_launch.auto_enable[1]", "unknown component 'kafka'"), "{p:?}");
        assert!(has(&p, "components.hume_ai.depends_on[0]", "unknown component 'redis'"), "{p:?}");
    }

    #[test]
    fn dependency_cycles_are_reported() {
        let yaml = default_with(|v| {
            set(v, &["components", "vault_ha", "depends_on"], vec!["dat_iq"].into());
            set(v, &["components", "dat_iq", "depends_on"], vec!["vault_ha"].into());
        });
        let p = problems(&yaml);
        assert!(has(&p, "components", "dependency cycle: dat_iq -> vault_ha -> dat_iq"), "{p:?}");
    }

    #[test]
    fn negative_costs_are_reported() {
        let yaml = default_with(|v| set(v, &["components", "hume_ai", "cost", "hot"], (-5).into()));
        assert!(has(&problems(&yaml), "components.hume_ai.cost.hot", "must not be negative"));
    }

    #[test]
    fn missing_debounce_is_reported() {
        let yaml = default_with(|v| {
            v["levels"]["level_3_scale"].as_mapping_mut().unwrap().remove("required_consecutive_months");
            set(v, &["levels", "level_2_growth", "required_consecutive_months"], 0.into());
        });
        let p = problems(&yaml);
        assert!(has(&p, "levels.level_3_scale.required_consecutive_months", "missing debounce"), "{p:?}");
        assert!(has(&p, "levels.level_2_growth.required_consecutive_months", "at least 1"), "{p:?}");
    }

    #[test]
    fn every_count_and_duration_has_an_upper_bound_named_by_its_key_path() {
        let yaml = default_with(|v| {
            set(v, &["churn", "grace_days"], 60_000_000.into());
            set(v, &["churn", "cooldown_days"], 4_000_000_000u32.into());
            set(v, &["circuit_breaker", "cooldown_days"], 1_096.into());
            set(v, &["circuit_breaker", "failures"], 101.into());
            set(v, &["safety", "approval_expiry_days"], 0.into());
            set(v, &["levels", "level_3_scale", "required_consecutive_months"], 37.into());
        });
        let p = problems(&yaml);
        assert!(has(&p, "churn.grace_days", "between 1 and 365 (got 60000000)"), "{p:?}");
        assert!(has(&p, "churn.cooldown_days", "between 0 and 1095"), "{p:?}");
        assert!(has(&p, "circuit_breaker.cooldown_days", "between 0 and 1095 (got 1096)"), "{p:?}");
        assert!(has(&p, "circuit_breaker.failures", "between 1 and 100 (got 101)"), "{p:?}");
        assert!(has(&p, "safety.approval_expiry_days", "between 1 and 90 (got 0)"), "{p:?}");
        assert!(has(&p, "levels.level_3_scale.required_consecutive_months", "at most 36 (got 37)"), "{p:?}");
        assert_eq!(
            Config::default_config().unwrap().safety.approval_expiry_days,
            DEFAULT_APPROVAL_EXPIRY_DAYS
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let yaml = default_with(|v| {
            set(v, &["currency"], "euro".into());
            set(v, &["safety", "block_ratio"], 1.5.into());
            set(v, &["safety", "alert_ratio"], 1.6.into());
            set(v, &["churn", "grace_days"], 0.into());
            set(v, &["churn", "floor_level"], 9.into());
            set(v, &["circuit_breaker", "failures"], 0.into());
            set(v, &["prewarm_days"], 40.into());
            set(v, &["components", "ollama", "cost", "warm"], 1000.into());
            set(v, &["components", "hume_ai", "cost", "hot"], "1.234".into());
        });
        let p = problems(&yaml);
        for path in [
            "currency",
            "safety.block_ratio",
            "safety.alert_ratio",
            "churn.grace_days",
            "churn.floor_level",
            "circuit_breaker.failures",
            "prewarm_days",
            "components.ollama.cost.warm",
            "components.hume_ai.cost.hot",
        ] {
            assert!(p.iter().any(|x| x.path == path), "no problem at {path}: {p:?}");
        }
        let err = ConfigError(p).to_string();
        assert!(err.starts_with("invalid configuration (") && err.contains("  - currency: "), "{err}");
    }

    #[test]
    fn level_numbering_and_band_shape_are_checked() {
        let yaml = default_with(|v| {
            set(v, &["levels", "level_3_scale", "level"], 2.into());
            set(v, &["levels", "level_0_bootstrap", "revenue_range", "min"], 10.into());
            set(v, &["levels", "level_4_enterprise", "revenue_range", "max"], 20000.into());
        });
        let p = problems(&yaml);
        assert!(has(&p, "levels", "level 2 is declared more than once"), "{p:?}");
        assert!(has(&p, "levels", "no gaps"), "{p:?}");
        assert!(has(&p, "levels.level_0_bootstrap.revenue_range.min", "must start at 0"), "{p:?}");
        assert!(has(&p, "levels.level_4_enterprise.revenue_range.max", "open-ended"), "{p:?}");
    }

    #[test]
    fn component_placement_rules_are_checked() {
        let yaml = default_with(|v| {
            set(
                v,
                &["levels", "level_2_growth", "auto_enable"],
                vec!["hume_ai", "k8s_workers", "eks_control_plane"].into(),
            );
            set(v, &["levels", "level_3_scale", "auto_enable"], vec!["dat_iq"].into());
            set(v, &["components", "dat_iq", "driver"], serde_norway::from_str("{kind: always_on}").unwrap());
            set(v, &["components", "eks_control_plane", "depends_on"], vec!["tee"].into());
            set(v, &["components", "k8s_workers", "depends_on"], serde_norway::Value::Sequence(vec![]));
            set(v, &["levels", "level_1_launch", "revenue_range", "max"], 300.into());
        });
        let p = problems(&yaml);
        assert!(has(&p, "levels.level_2_growth.auto_enable[2]", "already enabled by level 1"), "{p:?}");
        assert!(has(&p, "components.vault_ha", "no level's auto_enable"), "{p:?}");
        assert!(has(&p, "components.dat_iq.driver", "belongs to level 0"), "{p:?}");
        assert!(has(&p, "components.eks_control_plane.depends_on[0]", "higher level 4"), "{p:?}");
        assert!(has(&p, "components.k8s_workers.depends_on", "must depend on the eks_cluster"), "{p:?}");
        assert!(has(&p, "levels.level_1_launch.revenue_range", "below min"), "{p:?}");
    }

    #[test]
    fn node_group_sizes_are_checked() {
        let yaml = default_with(|v| set(v, &["components", "k8s_workers", "driver", "min_size"], 9.into()));
        assert!(has(&problems(&yaml), "components.k8s_workers.driver", "min <= desired <= max"));
    }

    #[test]
    fn yaml_syntax_errors_carry_a_location() {
        let p = problems("levels: [unclosed");
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("line"), "{p:?}");
        let p = problems(&default_with(|v| set(v, &["surprise"], 1.into())));
        assert!(p[0].message.contains("unknown field `surprise`"), "{p:?}");
    }

    #[test]
    fn only_the_top_level_may_be_open_ended() {
        let yaml = default_with(|v| {
            v["levels"]["level_1_launch"]["revenue_range"].as_mapping_mut().unwrap().remove("max");
        });
        assert!(has(&problems(&yaml), "levels.level_1_launch.revenue_range.max", "only the top level"));
    }

    #[test]
    fn amounts_may_be_quoted_decimals() {
        let yaml = default_with(|v| set(v, &["components", "hume_ai", "cost", "hot"], "65.50".into()));
        let c = Config::from_yaml(&yaml).unwrap();
        assert_eq!(c.components[&ComponentId::new("hume_ai")].hot_cost.minor, 6550);
        assert_eq!(c.components[&ComponentId::new("hume_ai")].driver.kind(), "ssm_flag");
    }

    fn deployment() -> Deployment {
        Deployment::from_parameters(|p| {
            Some(
                match p {
                    "EksClusterName" => "prod",
                    "EksClusterRoleArn" => "arn:aws:iam::111122223333:role/cluster",
                    "EksNodeRoleArn" => "arn:aws:iam::111122223333:role/node",
                    "FlagPrefix" => "/revscale/flags",
                    _ => return None,
                }
                .to_string(),
            )
        })
    }

    fn with(mut d: Deployment, parameter: &str, value: &str) -> Deployment {
        d.0.insert(parameter.into(), value.into());
        d
    }

    #[test]
    fn the_deployment_fills_in_the_cluster_and_roles_the_config_leaves_out() {
        let shipped = Config::default_config().unwrap();
        let deployed = shipped.for_deployment(&deployment()).unwrap();
        match &deployed.components[&ComponentId::new("k8s_workers")].driver {
            DriverSpec::EksNodegroup(n) => {
                assert_eq!(
                    (n.cluster_name.as_str(), n.node_role_arn.as_str()),
                    ("prod", "arn:aws:iam::111122223333:role/node")
                );
            }
            other => panic!("{other:?}"),
        }
        match &deployed.components[&ComponentId::new("eks_control_plane")].driver {
            DriverSpec::EksCluster(c) => {
                assert_eq!(
                    (c.cluster_name.as_str(), c.role_arn.as_str()),
                    ("prod", "arn:aws:iam::111122223333:role/cluster")
                );
            }
            other => panic!("{other:?}"),
        }
        assert_ne!(deployed.fingerprint, shipped.fingerprint, "decision ids follow the resources they name");
        assert_eq!(
            deployed.for_deployment(&deployment()).unwrap(),
            deployed,
            "filling twice changes nothing"
        );
    }

    #[test]
    fn a_cluster_role_or_flag_the_stack_does_not_manage_is_a_problem_with_its_path() {
        let other = with(deployment(), "EksClusterName", "staging");
        let named = Config::default_config().unwrap().for_deployment(&other).unwrap();
        let p = named.for_deployment(&deployment()).unwrap_err().0;
        assert!(
            has(
                &p,
                "components.eks_control_plane.driver.cluster_name",
                "differs from the stack's EksClusterName 'prod'"
            ),
            "{p:?}"
        );
        assert!(has(&p, "components.k8s_workers.driver.cluster_name", "leave it out"), "{p:?}");
        let prefix = with(deployment(), "FlagPrefix", "/other/");
        let p = Config::default_config().unwrap().for_deployment(&prefix).unwrap_err().0;
        assert!(
            has(&p, "components.hume_ai.driver.parameter_name", "outside the stack's FlagPrefix"),
            "{p:?}"
        );
    }

    #[test]
    fn a_workload_components_id_must_be_a_kubernetes_label_value() {
        let workload = |id: &str| {
            let id = id.to_string();
            default_with(move |v| {
                let spec = serde_json::json!({
                    "billing": "aws", "cost": {"hot": 0, "warm": 0},
                    "driver": {"kind": "kubernetes_workload", "namespace": "jobs",
                               "workload_kind": "Deployment", "name": "batch"}
                });
                set(v, &["components", &id], serde_norway::to_value(spec).unwrap());
                let enabled = v["levels"]["level_1_launch"]["auto_enable"].as_sequence_mut().unwrap();
                enabled.push(serde_norway::Value::String(id.clone()));
            })
        };
        assert!(Config::from_yaml(&workload("batch_jobs")).is_ok());
        let p = problems(&workload("batch jobs"));
        assert!(has(&p, "components.batch jobs", "its workload's label value"), "{p:?}");
        let p = problems(&workload("batch_"));
        assert!(has(&p, "components.batch_", "starting and ending with a letter or digit"), "{p:?}");
    }

    #[test]
    fn the_cluster_revscale_creates_knows_the_namespaces_its_workloads_need_without_deciding_differently() {
        let c = Config::default_config().unwrap();
        let DriverSpec::EksCluster(cluster) = &c.components[&ComponentId::new("eks_control_plane")].driver
        else {
            panic!("not a cluster")
        };
        assert_eq!(cluster.workload_namespaces, ["escrow", "tee", "vault"]);
        // Each workload keeps the same scope current at its own steps.
        let DriverSpec::KubernetesWorkload(vault) = &c.components[&ComponentId::new("vault_ha")].driver
        else {
            panic!("not a workload")
        };
        assert_eq!(
            vault.access_namespaces.as_deref(),
            Some(&["escrow".to_string(), "tee".into(), "vault".into()][..])
        );
        // Derived, not configured: not written, not in the fingerprint.
        assert!(!serde_json::to_string(cluster).unwrap().contains("workload_namespaces"));
        let e = Config::from_yaml(&DEFAULT_CONFIG_YAML.replace(
            "      kubernetes_version: \"1.33\"\n",
            "      kubernetes_version: \"1.33\"\n      workload_namespaces: [kube-system]\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("workload_namespaces"), "it cannot be written: {e}");
    }

    #[test]
    fn a_workloads_manifests_file_is_read_by_the_caller_and_a_foreign_label_in_it_is_a_problem() {
        let text = default_with(|v| {
            let spec = serde_json::json!({
                "billing": "aws", "cost": {"hot": 0, "warm": 0},
                "driver": {"kind": "kubernetes_workload", "namespace": "jobs", "replicas": 2,
                           "workload_kind": "Deployment", "name": "batch", "manifests_file": "batch.yaml"}
            });
            set(v, &["components", "batch"], serde_norway::to_value(spec).unwrap());
            let enabled = v["levels"]["level_1_launch"]["auto_enable"].as_sequence_mut().unwrap();
            enabled.push(serde_norway::Value::String("batch".into()));
        });
        let labelled = |value: &str| {
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: batch, labels: {{revscale-component: {value}}}}}\n"
            )
        };
        let read = |body: String| {
            move |file: &str| -> Result<String, String> {
                if file == "batch.yaml" { Ok(body.clone()) } else { shipped_file(file) }
            }
        };
        let c = Config::from_yaml_reading(&text, &read(labelled("batch"))).unwrap();
        let DriverSpec::KubernetesWorkload(w) = &c.components[&ComponentId::new("batch")].driver else {
            panic!("not a workload")
        };
        assert_eq!(w.manifests().unwrap().len(), 1);
        let p = Config::from_yaml_reading(&text, &read(labelled("vault_ha"))).unwrap_err().0;
        assert!(
            has(
                &p,
                "components.batch.driver.manifests_file",
                "revscale-component=vault_ha: revscale labels it batch"
            ),
            "{p:?}"
        );
        // The engine alone reads no file: the problem names the key and the file.
        let p = problems(&text);
        assert!(has(&p, "components.batch.driver.manifests_file", "cannot read 'batch.yaml'"), "{p:?}");
    }

    #[test]
    fn a_field_only_the_stack_can_set_is_a_problem_when_the_stack_does_not_set_it() {
        let mut d = deployment();
        d.0.remove("EksNodeRoleArn");
        let p = Config::default_config().unwrap().for_deployment(&d).unwrap_err().0;
        assert!(has(&p, "components.k8s_workers.driver.node_role_arn", "sets no EksNodeRoleArn"), "{p:?}");
    }

    #[test]
    fn a_cloudformation_stack_outside_the_stacks_prefix_or_with_another_role_is_a_problem() {
        let template = "Parameters: {Size: {Type: Number}}\nResources: {}\n";
        let yaml = default_with(|v| {
            let spec = serde_json::json!({
                "kind": "cloudformation_stack", "stack_name": "search-prod",
                "template_body": template, "role_arn": "arn:aws:iam::1:role/other",
                "parameters": {"hot": {"Size": "2"}, "warm": {"Size": "0"}}
            });
            set(v, &["components", "hume_ai", "driver"], serde_norway::to_value(spec).unwrap());
        });
        let config = Config::from_yaml(&yaml).unwrap();
        let d = with(
            with(deployment(), "CloudFormationRoleArn", "arn:aws:iam::1:role/cfn"),
            "CloudFormationStackPrefix",
            "revscale-",
        );
        let p = config.for_deployment(&d).unwrap_err().0;
        assert!(
            has(&p, "components.hume_ai.driver.stack_name", "outside the stack's CloudFormationStackPrefix"),
            "{p:?}"
        );
        assert!(
            has(&p, "components.hume_ai.driver.role_arn", "differs from the stack's CloudFormationRoleArn"),
            "{p:?}"
        );
    }
}
