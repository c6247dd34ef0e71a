//! Reading a function's environment: every missing or malformed variable is an error
//! that names it.

use revscale_engine::Currency;
use revscale_engine::money::FxRates;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {message}")]
    Invalid { name: &'static str, message: String },
}

/// Reads variables through a lookup function, so tests need not touch the process
/// environment.
pub struct Vars<F: Fn(&str) -> Option<String>>(pub F);

impl Vars<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Vars(|name| std::env::var(name).ok())
    }
}

/// Variables from a fixed list, for tests and tools.
pub fn from_pairs(pairs: &[(&str, &str)]) -> Vars<impl Fn(&str) -> Option<String> + use<>> {
    let map: std::collections::HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Vars(move |k: &str| map.get(k).cloned())
}

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    pub fn required(&self, name: &'static str) -> Result<String, EnvError> {
        (self.0)(name).filter(|v| !v.trim().is_empty()).ok_or(EnvError::Missing(name))
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn parsed<T: std::str::FromStr>(&self, name: &'static str, default: Option<T>) -> Result<T, EnvError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            Some(v) => {
                v.trim().parse().map_err(|e: T::Err| EnvError::Invalid { name, message: e.to_string() })
            }
            None => default.ok_or(EnvError::Missing(name)),
        }
    }
}

/// The collectors' money settings: `REVENUE_CURRENCY` (default EUR), the currency
/// snapshots are stored in, and `FX_RATES` (`USD=0.93,GBP=1.17`), the explicit rates
/// into it. Amounts in any other currency are refused, never guessed.
pub fn revenue_currency_and_fx<F: Fn(&str) -> Option<String>>(
    vars: &Vars<F>,
) -> Result<(Currency, FxRates), EnvError> {
    let currency = vars.parsed("REVENUE_CURRENCY", Some(Currency::EUR))?;
    let fx = FxRates::parse_list(&vars.optional("FX_RATES").unwrap_or_default())
        .map_err(|e| EnvError::Invalid { name: "FX_RATES", message: e.to_string() })?;
    Ok((currency, fx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_variable_is_named() {
        let vars = Vars(|_: &str| None);
        assert_eq!(
            vars.required("TABLE_NAME").unwrap_err().to_string(),
            "environment variable TABLE_NAME is not set"
        );
        assert_eq!(vars.parsed::<u32>("N", Some(3)).unwrap(), 3);
        assert!(vars.parsed::<u32>("N", None).is_err());
    }

    #[test]
    fn revenue_currency_defaults_to_eur_and_a_bad_rate_list_is_named() {
        let (currency, fx) = revenue_currency_and_fx(&from_pairs(&[("FX_RATES", "USD=0.93")])).unwrap();
        assert_eq!(currency, Currency::EUR);
        assert!(fx.rate(Currency::USD, Currency::EUR).is_ok());
        let err = revenue_currency_and_fx(&from_pairs(&[("FX_RATES", "USD")])).unwrap_err().to_string();
        assert!(err.starts_with("environment variable FX_RATES is invalid: "), "{err}");
        let err = revenue_currency_and_fx(&from_pairs(&[("REVENUE_CURRENCY", "euro")])).unwrap_err();
        assert!(matches!(err, EnvError::Invalid { name: "REVENUE_CURRENCY", .. }), "{err}");
    }

    #[test]
    fn an_invalid_variable_is_named_with_the_reason() {
        let vars = Vars(|_: &str| Some("abc".to_string()));
        let err = vars.parsed::<u32>("MAX", None).unwrap_err().to_string();
        assert!(err.starts_with("environment variable MAX is invalid: "), "{err}");
        assert_eq!(vars.required("X").unwrap(), "abc");
    }
}

/// The schedule's IANA time zone (`SCHEDULE_TIMEZONE`), parsed once at cold start: a
/// function's "today" is the date the collectors and the evaluator give their
/// snapshots and decisions. Without it, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScheduleZone(pub Option<chrono_tz::Tz>);

impl ScheduleZone {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, EnvError> {
        match vars.optional("SCHEDULE_TIMEZONE") {
            None => Ok(ScheduleZone(None)),
            Some(zone) => {
                zone.trim().parse().map(|tz| ScheduleZone(Some(tz))).map_err(|_| EnvError::Invalid {
                    name: "SCHEDULE_TIMEZONE",
                    message: format!("'{zone}' is not an IANA time zone (e.g. Europe/Rome)"),
                })
            }
        }
    }

    /// `now`'s date in the zone.
    pub fn today(self, now: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
        match self.0 {
            Some(tz) => now.with_timezone(&tz).date_naive(),
            None => now.date_naive(),
        }
    }
}
