//! The simulator: the real engine, day by day, over a revenue/cost scenario, with a
//! simulated driver instead of AWS. Pure: the caller reads the file and prints.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{Datelike, Days, Months, NaiveDate};
use serde::Deserialize;

use revscale_engine::config::{Component, Config};
use revscale_engine::decision::{Event, Outcome};
use revscale_engine::history::{DailySnapshot, History, YearMonth};
use revscale_engine::model::ComponentId;
use revscale_engine::model::ComponentState;
use revscale_engine::model::DecisionId;
use revscale_engine::money::{Money, Ratio};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError, DriverStatus, Observed};
use revscale_engine::provisioning::execute;
use revscale_engine::rules::{Identify, Inputs, decide, history_needed_from};
use revscale_engine::runway::RunwayMonths;

pub mod forecast;
use revscale_engine::state::SystemState;

/// From `date` on, MRR is `mrr` and the monthly run-rate of costs not caused by managed
/// components is `cost`. `cash`, when the row has one, is the bank balance on `date`
/// (as `revscale cash set` would record it that day), for the runway guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScenarioRow {
    pub date: NaiveDate,
    pub mrr: Money,
    pub cost: Money,
    pub cash: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub rows: Vec<ScenarioRow>,
    /// `# inject-failure: COMPONENT@YYYY-MM-DD` lines, so a failure scenario carries
    /// its own failure.
    pub failures: Vec<InjectedFailure>,
    /// Each row's line in the file, for the errors of what reads the rows later.
    pub lines: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("the header must be 'date,mrr,cost' or 'date,mrr,cost,cash' (got '{0}')")]
    Header(String),
    #[error("the scenario has no rows")]
    Empty,
}

#[derive(Debug, Deserialize)]
struct RawRow {
    date: String,
    mrr: String,
    cost: String,
    #[serde(default)]
    cash: Option<String>,
}

impl Scenario {
    /// Parses `date,mrr,cost` CSV, with an optional fourth column `cash` (empty on
    /// the days without a balance). Every problem names its line; nothing is returned
    /// unless the whole file is valid.
    pub fn parse_csv(text: &str, config: &Config) -> Result<Scenario, ScenarioError> {
        let mut reader =
            csv::ReaderBuilder::new().trim(csv::Trim::All).comment(Some(b'#')).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| ScenarioError::Header(e.to_string()))?.clone();
        let columns: Vec<&str> = headers.iter().collect();
        if columns != ["date", "mrr", "cost"] && columns != ["date", "mrr", "cost", "cash"] {
            return Err(ScenarioError::Header(columns.join(",")));
        }
        let fields = columns.len();
        let mut rows: Vec<ScenarioRow> = Vec::new();
        let mut lines = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| ScenarioError::Line {
                line: e.position().map_or(0, |p| p.line()),
                message: match e.kind() {
                    csv::ErrorKind::UnequalLengths { len, .. } => {
                        format!(
                            "expected {fields} fields ({}), found {len}",
                            headers.iter().collect::<Vec<_>>().join(",")
                        )
                    }
                    _ => e.to_string(),
                },
            })?;
            let line = record.position().map_or(0, |p| p.line());
            let at = |message: String| ScenarioError::Line { line, message };
            let raw: RawRow = record.deserialize(None).map_err(|e| at(e.to_string()))?;
            let date: NaiveDate = raw
                .date
                .parse()
                .map_err(|_| at(format!("'{}' is not a date (expected YYYY-MM-DD)", raw.date)))?;
            let amount = |field: &str, value: &str| -> Result<Money, ScenarioError> {
                let m = Money::parse(value, config.currency).map_err(|e| at(format!("{field}: {e}")))?;
                if m.is_negative() {
                    return Err(at(format!("{field} must not be negative (got {value})")));
                }
                Ok(m)
            };
            let cash = match raw.cash.as_deref().filter(|c| !c.is_empty()) {
                Some(value) => Some(amount("cash", value)?),
                None => None,
            };
            let row =
                ScenarioRow { date, mrr: amount("mrr", &raw.mrr)?, cost: amount("cost", &raw.cost)?, cash };
            if let Some(prev) = rows.last()
                && prev.date >= row.date
            {
                return Err(at(format!("dates must increase: {} comes after {}", row.date, prev.date)));
            }
            rows.push(row);
            lines.push(line);
        }
        if rows.is_empty() {
            return Err(ScenarioError::Empty);
        }
        let mut failures = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if let Some(spec) =
                line.trim().strip_prefix('#').and_then(|c| c.trim().strip_prefix("inject-failure:"))
            {
                let failure = spec
                    .trim()
                    .parse()
                    .map_err(|message| ScenarioError::Line { line: i as u64 + 1, message })?;
                failures.push(failure);
            }
        }
        Ok(Scenario { rows, failures, lines })
    }

    pub fn first_date(&self) -> NaiveDate {
        self.rows[0].date
    }

    pub fn last_date(&self) -> NaiveDate {
        self.rows[self.rows.len() - 1].date
    }

    /// The row in force on `date`: the latest one starting on or before it.
    pub fn row_on(&self, date: NaiveDate) -> Option<&ScenarioRow> {
        let idx = self.rows.partition_point(|r| r.date <= date);
        idx.checked_sub(1).map(|i| &self.rows[i])
    }
}

/// `COMPONENT@YYYY-MM-DD`: the component's next provisioning step on or after the date
/// fails once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedFailure {
    pub component: ComponentId,
    pub from: NaiveDate,
}

impl std::str::FromStr for InjectedFailure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (component, date) =
            s.split_once('@').ok_or_else(|| format!("'{s}' is not COMPONENT@YYYY-MM-DD"))?;
        let from = date.parse().map_err(|_| format!("'{date}' is not a date (expected YYYY-MM-DD)"))?;
        Ok(InjectedFailure { component: ComponentId::new(component), from })
    }
}

#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// Last day to simulate; default: the scenario's last date plus one month.
    pub until: Option<NaiveDate>,
    pub failures: Vec<InjectedFailure>,
    /// Approve pending level changes on the day they are requested, as a diligent
    /// operator would.
    pub auto_approve: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("--inject-failure names '{0}', which is not a configured component")]
    UnknownComponent(ComponentId),
    #[error("--until {until} is before the scenario's first date {first}")]
    UntilBeforeStart { until: NaiveDate, first: NaiveDate },
}

/// One simulated day, after evaluation and provisioning.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRecord {
    pub date: NaiveDate,
    pub mrr: Money,
    /// Total monthly cost observed that day: the scenario's cost plus managed components.
    pub cost: Money,
    pub ratio: Option<Ratio>,
    /// The 3-month daily mean the engine used that day, rounded half up for people.
    pub average_3m: Option<Money>,
    /// Months of runway that day, when the configuration guards it and it is known.
    pub runway: Option<RunwayMonths>,
    pub level: u8,
    pub components: BTreeMap<ComponentId, ComponentState>,
    pub events: Vec<Event>,
    pub decision_id: DecisionId,
    pub outcome: Outcome,
    pub reasons: Vec<String>,
}

/// Fails each injected component's first step on or after its date, once; otherwise
/// every change is immediate.
pub struct SimulatedDriver {
    pending: Mutex<Vec<InjectedFailure>>,
    today: Mutex<NaiveDate>,
    /// Where each component was last taken, as a real resource would remember it.
    reached: Mutex<BTreeMap<ComponentId, ComponentState>>,
}

impl SimulatedDriver {
    pub fn new(failures: Vec<InjectedFailure>, today: NaiveDate) -> Self {
        SimulatedDriver {
            pending: Mutex::new(failures),
            today: Mutex::new(today),
            reached: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn set_today(&self, date: NaiveDate) {
        if let Ok(mut today) = self.today.lock() {
            *today = date;
        }
    }
}

impl ComponentDriver for SimulatedDriver {
    async fn apply(&self, request: Apply<'_>) -> Result<(), DriverError> {
        let Apply { component, target, .. } = request;
        let today = self.today.lock().map(|d| *d).unwrap_or(NaiveDate::MIN);
        let mut pending =
            self.pending.lock().map_err(|_| DriverError::Rejected("simulated driver poisoned".into()))?;
        if let Some(i) = pending.iter().position(|f| f.component == component.id && f.from <= today) {
            pending.remove(i);
            return Err(DriverError::Rejected(format!(
                "injected failure: {} could not reach {target}",
                component.id
            )));
        }
        if let Ok(mut reached) = self.reached.lock() {
            reached.insert(component.id.clone(), target);
        }
        Ok(())
    }

    /// Where the component was last taken (COLD before anything), at its configured
    /// capacity when HOT.
    async fn observe(&self, component: &Component) -> Result<Observed, DriverError> {
        let state = self.reached.lock().ok().and_then(|r| r.get(&component.id).copied());
        let state = state.unwrap_or(ComponentState::Cold);
        let observed = Observed::at(&[state], state.as_str());
        Ok(match (state, component.driver.as_kind().configured_capacity()) {
            (ComponentState::Hot, Some(capacity)) => observed.with_capacity(capacity),
            _ => observed,
        })
    }

    async fn status(
        &self,
        _component: &Component,
        _target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        Ok(DriverStatus::Ready)
    }
}

pub fn simulate(
    config: &Config,
    scenario: &Scenario,
    options: &SimOptions,
) -> Result<Vec<DayRecord>, SimError> {
    let failures: Vec<InjectedFailure> = scenario.failures.iter().chain(&options.failures).cloned().collect();
    for f in &failures {
        if config.component(&f.component).is_none() {
            return Err(SimError::UnknownComponent(f.component.clone()));
        }
    }
    let first = scenario.first_date();
    let last = options.until.unwrap_or(scenario.last_date() + Months::new(1));
    if last < first {
        return Err(SimError::UntilBeforeStart { until: last, first });
    }
    let mut simulation = Simulation::new(config, first, failures, options.auto_approve);
    let mut days = Vec::new();
    let mut date = first;
    while date <= last {
        let Some(row) = scenario.row_on(date) else {
            break;
        };
        let cash = row.cash.filter(|_| row.date == date);
        days.push(simulation.day(date, row.mrr, row.cost, cash));
        date = date + Days::new(1);
    }
    Ok(days)
}

/// The engine's day, repeated: the state, the collected history and the simulated
/// driver, carried from one day to the next. [`simulate`] runs one over a scenario; a
/// forecast runs one over the history, then a copy of it over each future path.
pub struct Simulation<'c> {
    config: &'c Config,
    driver: SimulatedDriver,
    state: SystemState,
    billed: History,
    /// `state.production_history(billed)`, kept up to date a day at a time while what
    /// it adds to Cost Explorer's figure (the components billed outside AWS) stays the
    /// same, and rebuilt when it changes: the same history, without rebuilding it
    /// every day (a forecast runs millions of days).
    production: History,
    production_external: Option<Money>,
    auto_approve: bool,
    identify: Identify,
}

impl Clone for Simulation<'_> {
    fn clone(&self) -> Self {
        let reached = self.driver.reached.lock().map(|r| r.clone()).unwrap_or_default();
        let pending = self.driver.pending.lock().map(|p| p.clone()).unwrap_or_default();
        let today = self.driver.today.lock().map(|d| *d).unwrap_or(NaiveDate::MIN);
        Simulation {
            config: self.config,
            driver: SimulatedDriver {
                pending: Mutex::new(pending),
                today: Mutex::new(today),
                reached: Mutex::new(reached),
            },
            state: self.state.clone(),
            billed: self.billed.clone(),
            production: self.production.clone(),
            production_external: self.production_external,
            auto_approve: self.auto_approve,
            identify: self.identify,
        }
    }
}

/// What one simulated day decided and did.
pub struct Step {
    /// The decision, its `state` swapped for the one it was taken on: the state it
    /// produced is the simulation's now ([`Simulation::state`]).
    pub decision: revscale_engine::Decision,
    /// The decision's events, then the provisioning's (and an auto-approved
    /// re-evaluation's, cost alerts aside).
    pub events: Vec<Event>,
    /// The production cost of the day (the scenario's cost plus managed components).
    pub cost: Money,
}

impl<'c> Simulation<'c> {
    pub fn new(
        config: &'c Config,
        first: NaiveDate,
        failures: Vec<InjectedFailure>,
        auto_approve: bool,
    ) -> Self {
        Simulation {
            config,
            driver: SimulatedDriver::new(failures, first),
            state: SystemState::initial(config, first),
            billed: History::new(),
            production: History::new(),
            production_external: None,
            auto_approve,
            identify: Identify::Hashed,
        }
    }

    /// The same simulation, its decisions named without their hash from now on: for
    /// paths whose decisions no store will ever key on (a forecast's).
    pub fn unrecorded(mut self) -> Self {
        self.identify = Identify::Unrecorded;
        self
    }

    pub fn state(&self) -> &SystemState {
        &self.state
    }

    /// The cash figure carried to `date` as the engine estimates it (the figure less the
    /// net burn since), as founders who enter their balance every month would, when
    /// no real balance comes: a forecast's paths have no bank, and a figure left to age
    /// past 90 days would hold every activation for want of a balance, not of money.
    pub fn carry_cash(&mut self, date: NaiveDate) {
        let (Some(guard), Some(cash)) = (self.config.runway.as_ref(), self.state.cash.as_ref()) else {
            return;
        };
        // A figure too old to use stays so: the engine would not estimate from it.
        if (date - cash.as_of).num_days() > revscale_engine::runway::CASH_UNKNOWN_DAYS {
            return;
        }
        let estimate = revscale_engine::runway::cash_on(guard, cash, &self.production, date);
        let amount = Money::from_minor(estimate.minor.max(0), estimate.currency);
        if let Err(refused) = self.state.set_cash(self.config, amount, date, "forecast", date) {
            unreachable_cash(&refused);
        }
    }

    /// One day: `mrr` and `cost` (the run-rate of what revscale does not manage) as
    /// collected, and the bank balance when one is given that day.
    pub fn step(&mut self, date: NaiveDate, mrr: Money, cost: Money, cash: Option<Money>) -> Step {
        let config = self.config;
        // A balance on its own day, as an operator would set it that morning.
        if let Some(cash) = cash
            && let Err(refused) = self.state.set_cash(config, cash, date, "scenario", date)
        {
            // parse_csv read it in the configuration's currency, never negative.
            unreachable_cash(&refused);
        }
        // What Cost Explorer would show (the scenario's other costs and the components
        // billed by AWS), then the production cost exactly as the evaluator takes it.
        let aws_bill =
            Money::from_minor(cost.minor + self.state.aws_billed_cost(config).minor, config.currency);
        let production = self.state.production_cost(config, aws_bill);
        // Stored as collected, then read as the evaluation cycle reads it: the same
        // function, the same inputs, so a simulated day decides what a deployed one would.
        let window_start = history_needed_from(config, date);
        self.billed.insert(DailySnapshot { date, mrr, cost: Some(aws_bill) });
        self.billed.prune_before(window_start);
        let external = Money::from_minor(production.minor - aws_bill.minor, config.currency);
        if self.production_external == Some(external) {
            self.production.insert(DailySnapshot { date, mrr, cost: Some(production) });
            self.production.prune_before(window_start);
        } else {
            self.production = self.state.production_history(config, &self.billed);
            self.production_external = Some(external);
        }
        let history = &self.production;

        let mut decision = decide(&Inputs { config, state: &self.state, history }, date, self.identify);
        // The decision's events are the day's; the day's record takes them.
        let mut events = std::mem::take(&mut decision.events);
        if self.auto_approve
            && decision.outcome == Outcome::AwaitingApproval
            && let Some(pending) = decision.state.pending_approval.as_mut()
        {
            // Through the same gate as the API's approvals, naming what it approves.
            let id = pending.id();
            if let Err(refused) =
                revscale_engine::approval::approve(pending, "simulated-operator", &id, config, date)
            {
                decision.reasons.push(format!("the simulated approval was refused: {refused}"));
            }
            let approved = decision.state.clone();
            decision = decide(&Inputs { config, state: &approved, history }, date, self.identify);
            // The re-evaluation's events, but those the first one raised already (its
            // alerts, a hold).
            let again: Vec<Event> = decision.events.iter().filter(|e| !events.contains(e)).cloned().collect();
            events.extend(again);
        }
        // The decision's state becomes the simulation's (the decision keeps the one it
        // was taken on; nothing reads it after this).
        std::mem::swap(&mut self.state, &mut decision.state);
        if decision.outcome == Outcome::Execute {
            self.driver.set_today(date);
            events.extend(pollster::block_on(execute(
                config,
                &mut self.state,
                &decision,
                &self.driver,
                date,
            )));
        }
        self.state.version += 1;
        Step { decision, events, cost: production }
    }

    /// [`Simulation::step`], as the simulator's day record.
    pub fn day(&mut self, date: NaiveDate, mrr: Money, cost: Money, cash: Option<Money>) -> DayRecord {
        let Step { decision, events, cost } = self.step(date, mrr, cost, cash);
        DayRecord {
            date,
            mrr,
            cost,
            ratio: cost.ratio_to(mrr),
            average_3m: decision.figures.average_3m,
            runway: decision.figures.runway,
            level: self.state.level,
            components: self.state.components.iter().map(|(id, r)| (id.clone(), r.state)).collect(),
            events,
            decision_id: decision.id,
            outcome: decision.outcome,
            reasons: decision.reasons,
        }
    }
}

/// The scenario's cash is read in the configuration's currency and never negative, on
/// its own day: the engine cannot refuse it. Kept as a function so that a refusal, if
/// the rules change, shows in the reasons rather than vanishing.
fn unreachable_cash(refused: &revscale_engine::state::CashRefused) {
    debug_assert!(false, "the scenario's cash was refused: {refused}");
}

/// One line of the month-by-month table.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthRow {
    pub month: YearMonth,
    /// MRR on the month's last simulated day.
    pub mrr: Money,
    /// The engine's 3-month daily mean on the month's last simulated day.
    pub average_3m: Money,
    pub cost: Money,
    pub ratio: Option<Ratio>,
    /// Months of runway on the month's last simulated day (when guarded and known).
    pub runway: Option<RunwayMonths>,
    pub level: u8,
    pub changes: Vec<MonthEntry>,
    pub alerts: Vec<MonthEntry>,
}

/// An event in the month table: first day of the month it happened, and on how many
/// days it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthEntry {
    pub day: u32,
    pub summary: String,
    pub days: u32,
}

impl std::fmt::Display for MonthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02} {}", self.day, self.summary)?;
        if self.days > 1 {
            write!(f, " ({} days)", self.days)?;
        }
        Ok(())
    }
}

pub fn monthly(days: &[DayRecord]) -> Vec<MonthRow> {
    let mut rows: Vec<MonthRow> = Vec::new();
    for day in days {
        let month = YearMonth::of(day.date);
        if rows.last().is_none_or(|r| r.month != month) {
            rows.push(MonthRow {
                month,
                mrr: day.mrr,
                average_3m: day.mrr,
                cost: day.cost,
                ratio: day.ratio,
                runway: day.runway,
                level: day.level,
                changes: Vec::new(),
                alerts: Vec::new(),
            });
        }
        let Some(row) = rows.last_mut() else { continue };
        row.mrr = day.mrr;
        row.cost = day.cost;
        row.ratio = day.ratio;
        row.runway = day.runway;
        row.level = day.level;
        row.average_3m = day.average_3m.unwrap_or(day.mrr);
        for event in &day.events {
            let summary = event.summary();
            let alert =
                matches!(event, Event::Alert { .. } | Event::RunwayAlert { .. } | Event::CashStale { .. });
            let list = if alert { &mut row.alerts } else { &mut row.changes };
            // A condition that holds for days (a blocked level) is listed once, with
            // its first day and how many days it repeated.
            match list.iter_mut().find(|entry| entry.summary == summary) {
                Some(entry) => entry.days += 1,
                None => list.push(MonthEntry { day: day.date.day(), summary, days: 1 }),
            }
        }
    }
    rows
}
