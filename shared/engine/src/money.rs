//! Exact money: integer minor units tagged with their currency.
//!
//! Every amount the engine compares (MRR, cost, burn limits) is a [`Money`]. Adding or
//! comparing two amounts in different currencies is an error, never a silent mix: the
//! adapters convert with an explicit FX rate before anything reaches the engine.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An ISO 4217 code such as `EUR`: three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");
    pub const USD: Currency = Currency(*b"USD");

    pub fn as_str(&self) -> &str {
        // Construction only accepts ASCII upper-case letters, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Decimal places of the currency's minor unit, from ISO 4217: 0 for JPY, 3 for
    /// KWD, 2 for most. The one table every amount in revscale is scaled by; a code
    /// ISO does not list (or lists without a minor unit, such as XAU) counts as 2.
    pub const fn exponent(self) -> u32 {
        match &self.0 {
            b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG" | b"RWF"
            | b"UGX" | b"UYI" | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
            b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
            b"CLF" | b"UYW" => 4,
            _ => 2,
        }
    }

    /// Minor units in one major unit: 10^exponent.
    pub const fn minor_per_unit(self) -> i64 {
        10i64.pow(self.exponent())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() == 3 && bytes.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([bytes[0], bytes[1], bytes[2]]))
        } else {
            Err(MoneyError::BadCurrency(s.to_string()))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("'{0}' is not an ISO 4217 currency code (three upper-case letters)")]
    BadCurrency(String),
    #[error("'{0}' is not an amount (expected a number such as 1234.56)")]
    NotANumber(String),
    #[error("'{0}' has more decimal places than {1} has ({2})")]
    TooPrecise(String, Currency, u32),
    #[error("'{0}' must be a whole number of basis points (at most four decimal places, not negative)")]
    BadRatio(String),
    #[error("'{0}' is too large")]
    Overflow(String),
    #[error("cannot combine {left} with {right} without an explicit FX rate")]
    CurrencyMismatch { left: Currency, right: Currency },
}

/// An exact amount in minor units of one currency: cents for EUR, yen for JPY, fils
/// (thousandths) for KWD, as [`Currency::exponent`] says.
///
/// Serialised as `{"minor", "currency"}`, plus `"exponent"` for a currency whose minor
/// unit is not a hundredth. Amounts written before exponents existed (hundredths for
/// every currency, no `"exponent"`) are rescaled exactly when read, so a stored JPY or
/// KWD snapshot keeps its value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

#[derive(Serialize, Deserialize)]
struct StoredMoney {
    minor: i64,
    currency: Currency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exponent: Option<u32>,
}

/// What every amount was scaled by before [`Currency::exponent`].
const LEGACY_EXPONENT: u32 = 2;

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let exponent = self.currency.exponent();
        StoredMoney {
            minor: self.minor,
            currency: self.currency,
            exponent: (exponent != LEGACY_EXPONENT).then_some(exponent),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let stored = StoredMoney::deserialize(d)?;
        let from = stored.exponent.unwrap_or(LEGACY_EXPONENT);
        rescale(stored.minor, from, stored.currency)
            .map(|minor| Money { minor, currency: stored.currency })
            .map_err(serde::de::Error::custom)
    }
}

/// `minor` units of 10^-`from` as units of the currency's own minor unit; exact or an
/// error, never rounded.
fn rescale(minor: i64, from: u32, currency: Currency) -> Result<i64, String> {
    let to = currency.exponent();
    let factor = 10i64.pow(from.abs_diff(to));
    let scaled =
        if from >= to { (minor % factor == 0).then(|| minor / factor) } else { minor.checked_mul(factor) };
    scaled.ok_or_else(|| {
        format!("{minor} x 10^-{from} {currency} cannot be held exactly in {currency}'s minor unit")
    })
}

impl Money {
    pub const fn from_minor(minor: i64, currency: Currency) -> Self {
        Money { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Self {
        Money { minor: 0, currency }
    }

    pub const fn whole(units: i64, currency: Currency) -> Self {
        Money { minor: units * currency.minor_per_unit(), currency }
    }

    /// Exact conversion from a decimal in major units; more decimal places than the
    /// currency has is refused rather than rounded, because a silently rounded
    /// threshold is a wrong threshold.
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let minor = amount
            .checked_mul(Decimal::from(currency.minor_per_unit()))
            .ok_or_else(|| MoneyError::Overflow(amount.to_string()))?;
        if minor.fract() != Decimal::ZERO {
            return Err(MoneyError::TooPrecise(amount.to_string(), currency, currency.exponent()));
        }
        let minor: i64 = minor.trunc().try_into().map_err(|_| MoneyError::Overflow(amount.to_string()))?;
        Ok(Money { minor, currency })
    }

    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let trimmed = amount.trim();
        let decimal = Decimal::from_str(trimmed).map_err(|_| MoneyError::NotANumber(trimmed.to_string()))?;
        Self::from_decimal(decimal, currency)
    }

    /// Rounds an amount in major units to the currency's minor unit, half away from
    /// zero (the way invoices round), for amounts computed rather than configured.
    pub fn round_from_decimal(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let minor = amount
            .checked_mul(Decimal::from(currency.minor_per_unit()))
            .ok_or_else(|| MoneyError::Overflow(amount.to_string()))?
            .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        let minor: i64 = minor.try_into().map_err(|_| MoneyError::Overflow(amount.to_string()))?;
        Ok(Money { minor, currency })
    }

    /// The amount in major units, exact.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.minor, self.currency.exponent())
    }

    pub fn is_negative(self) -> bool {
        self.minor < 0
    }

    pub fn is_zero(self) -> bool {
        self.minor == 0
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency })
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or_else(|| MoneyError::Overflow(format!("{self} + {other}")))?;
        Ok(Money { minor, currency: self.currency })
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or_else(|| MoneyError::Overflow(format!("{self} - {other}")))?;
        Ok(Money { minor, currency: self.currency })
    }

    pub fn checked_cmp(self, other: Money) -> Result<std::cmp::Ordering, MoneyError> {
        self.same_currency(other)?;
        Ok(self.minor.cmp(&other.minor))
    }

    /// `self × ratio`, rounded down to the minor unit: used for limits, so rounding never
    /// makes a limit more permissive than configured.
    pub fn times(self, ratio: Ratio) -> Money {
        let scaled = i128::from(self.minor) * i128::from(ratio.basis_points) / 10_000;
        Money { minor: scaled as i64, currency: self.currency }
    }

    /// Mean of amounts of one currency, rounded down to the minor unit.
    pub fn mean(amounts: &[Money]) -> Option<Money> {
        let first = amounts.first()?;
        let total: i128 = amounts.iter().map(|m| i128::from(m.minor)).sum();
        Some(Money { minor: (total / amounts.len() as i128) as i64, currency: first.currency })
    }

    /// `self / denominator` in basis points (1% = 100), `None` when the denominator is
    /// not positive: a cost ratio against no revenue is undefined, not infinite.
    pub fn ratio_to(self, denominator: Money) -> Option<Ratio> {
        if denominator.minor <= 0 || self.currency != denominator.currency {
            return None;
        }
        let bp = i128::from(self.minor) * 10_000 / i128::from(denominator.minor);
        Some(Ratio { basis_points: bp.clamp(0, i128::from(u32::MAX)) as u32 })
    }
}

impl fmt::Display for Money {
    /// `EUR 1,234.56`, `KWD 12.345`, `JPY 1,200`; whole amounts drop the minor units
    /// (`EUR 800`), which is how the ADR writes thresholds and how reasons read best.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let exponent = self.currency.exponent() as usize;
        let per_unit = self.currency.minor_per_unit().unsigned_abs();
        let units = abs / per_unit;
        let cents = abs % per_unit;
        let digits = units.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        if cents == 0 {
            write!(f, "{} {sign}{grouped}", self.currency)
        } else {
            write!(f, "{} {sign}{grouped}.{cents:0exponent$}", self.currency)
        }
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A non-negative ratio in basis points (0.90 = 9000): exact, orderable, hashable.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Ratio {
    pub basis_points: u32,
}

impl Ratio {
    pub const fn from_basis_points(basis_points: u32) -> Self {
        Ratio { basis_points }
    }

    pub fn from_decimal(value: Decimal) -> Result<Self, MoneyError> {
        let bp = value * Decimal::from(10_000);
        if bp.fract() != Decimal::ZERO || bp.is_sign_negative() {
            return Err(MoneyError::BadRatio(value.to_string()));
        }
        let bp: u32 = bp.trunc().try_into().map_err(|_| MoneyError::Overflow(value.to_string()))?;
        Ok(Ratio { basis_points: bp })
    }

    /// Percentage with two decimals, for display and metrics only (never compared).
    pub fn as_percent(self) -> f64 {
        f64::from(self.basis_points) / 100.0
    }

    /// `1 - self`, saturating at zero.
    pub fn complement(self) -> Ratio {
        Ratio { basis_points: 10_000u32.saturating_sub(self.basis_points) }
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.basis_points / 100;
        let frac = self.basis_points % 100;
        if frac == 0 { write!(f, "{whole}%") } else { write!(f, "{whole}.{frac:02}%") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(s: &str) -> Money {
        Money::parse(s, Currency::EUR).unwrap()
    }

    #[test]
    fn money_is_parsed_exactly_to_the_cent() {
        assert_eq!(eur("1234.56").minor, 123_456);
        assert_eq!(eur("0.1").minor, 10);
        assert_eq!(eur(" 800 ").minor, 80_000);
    }

    #[test]
    fn sub_cent_amounts_are_refused_not_rounded() {
        assert_eq!(
            Money::parse("1.005", Currency::EUR),
            Err(MoneyError::TooPrecise("1.005".into(), Currency::EUR, 2))
        );
        assert_eq!(
            Money::parse("1.005", Currency::EUR).unwrap_err().to_string(),
            "'1.005' has more decimal places than EUR has (2)"
        );
    }

    fn currency(code: &str) -> Currency {
        code.parse().unwrap()
    }

    #[test]
    fn iso_4217_exponents_cover_zero_two_three_and_four_decimal_currencies() {
        for code in ["JPY", "KRW", "CLP", "VND", "ISK", "UGX", "XAF", "XOF", "XPF", "BIF", "PYG"] {
            assert_eq!(currency(code).exponent(), 0, "{code}");
        }
        for code in ["KWD", "BHD", "JOD", "OMR", "TND", "IQD", "LYD"] {
            assert_eq!(currency(code).exponent(), 3, "{code}");
        }
        for code in ["EUR", "USD", "GBP", "CHF", "HUF", "TWD", "MGA", "INR"] {
            assert_eq!(currency(code).exponent(), 2, "{code}");
        }
        assert_eq!(currency("CLF").exponent(), 4);
        assert_eq!(currency("KWD").minor_per_unit(), 1_000);
        assert_eq!(Currency::EUR.minor_per_unit(), 100);
        assert_eq!(currency("JPY").minor_per_unit(), 1);
    }

    #[test]
    fn amounts_scale_by_their_own_currency() {
        let kwd = currency("KWD");
        let jpy = currency("JPY");
        assert_eq!(Money::parse("12.345", kwd).unwrap().minor, 12_345);
        assert_eq!(Money::whole(3, kwd).minor, 3_000);
        assert_eq!(Money::parse("1200", jpy).unwrap().minor, 1_200);
        assert!(Money::parse("0.5", jpy).is_err());
        assert_eq!(Money::from_minor(12_345, kwd).to_decimal().to_string(), "12.345");
        assert_eq!(Money::from_minor(1_200, jpy).to_decimal().to_string(), "1200");
        assert_eq!(Money::from_minor(1_234_505, kwd).to_string(), "KWD 1,234.505");
        assert_eq!(Money::from_minor(1_234_050, kwd).to_string(), "KWD 1,234.050");
        assert_eq!(Money::from_minor(5_000, kwd).to_string(), "KWD 5");
        assert_eq!(Money::from_minor(120_000, jpy).to_string(), "JPY 120,000");
    }

    #[test]
    fn amounts_stored_before_exponents_keep_their_value() {
        // EUR reads and writes exactly as before.
        let eur: Money = serde_json::from_str(r#"{"minor": 12345, "currency": "EUR"}"#).unwrap();
        assert_eq!(eur.minor, 12_345);
        assert_eq!(serde_json::to_string(&eur).unwrap(), r#"{"minor":12345,"currency":"EUR"}"#);
        // JPY and KWD were stored in hundredths: read back as yen and fils.
        let jpy: Money = serde_json::from_str(r#"{"minor": 123400, "currency": "JPY"}"#).unwrap();
        assert_eq!(jpy, Money::from_minor(1_234, currency("JPY")));
        let kwd: Money = serde_json::from_str(r#"{"minor": 1234, "currency": "KWD"}"#).unwrap();
        assert_eq!(kwd, Money::from_minor(12_340, currency("KWD")));
        // New ones say their exponent and round-trip.
        let text = serde_json::to_string(&jpy).unwrap();
        assert_eq!(text, r#"{"minor":1234,"currency":"JPY","exponent":0}"#);
        assert_eq!(serde_json::from_str::<Money>(&text).unwrap(), jpy);
        let text = serde_json::to_string(&kwd).unwrap();
        assert_eq!(serde_json::from_str::<Money>(&text).unwrap(), kwd);
        // A legacy JPY amount with fractional yen cannot be held: refused, not rounded.
        assert!(serde_json::from_str::<Money>(r#"{"minor": 123456, "currency": "JPY"}"#).is_err());
    }

    #[test]
    fn computed_amounts_round_half_away_from_zero_to_the_minor_unit() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        assert_eq!(Money::round_from_decimal(d("10.005"), Currency::EUR).unwrap().minor, 1_001);
        assert_eq!(Money::round_from_decimal(d("-10.005"), Currency::EUR).unwrap().minor, -1_001);
        assert_eq!(Money::round_from_decimal(d("1.2345"), currency("KWD")).unwrap().minor, 1_235);
        assert_eq!(Money::round_from_decimal(d("99.5"), currency("JPY")).unwrap().minor, 100);
        assert!(Money::round_from_decimal(Decimal::MAX, Currency::EUR).is_err());
    }

    #[test]
    fn non_numbers_are_refused() {
        assert!(matches!(Money::parse("12a", Currency::EUR), Err(MoneyError::NotANumber(_))));
    }

    #[test]
    fn huge_amounts_overflow_cleanly() {
        assert!(matches!(Money::parse("99999999999999999999", Currency::EUR), Err(MoneyError::Overflow(_))));
        let max = Money::from_minor(i64::MAX, Currency::EUR);
        assert!(max.checked_add(eur("0.01")).is_err());
        let min = Money::from_minor(i64::MIN, Currency::EUR);
        assert!(min.checked_sub(eur("0.01")).is_err());
    }

    #[test]
    fn euros_and_dollars_never_mix_without_a_rate() {
        let usd = Money::whole(1, Currency::USD);
        let err = eur("1").checked_add(usd).unwrap_err();
        assert_eq!(err.to_string(), "cannot combine EUR with USD without an explicit FX rate");
        assert!(eur("1").checked_sub(usd).is_err());
        assert!(eur("1").checked_cmp(usd).is_err());
        assert_eq!(eur("1").ratio_to(usd), None);
    }

    #[test]
    fn display_groups_thousands_and_keeps_cents() {
        assert_eq!(eur("800").to_string(), "EUR 800");
        assert_eq!(eur("1234567.5").to_string(), "EUR 1,234,567.50");
        assert_eq!(eur("-3000").to_string(), "EUR -3,000");
        assert_eq!(format!("{:?}", eur("12")), "EUR 12");
    }

    #[test]
    fn limits_round_down() {
        // 90% of EUR 0.05 is 4.5 cents: the limit is 4, never 5.
        assert_eq!(eur("0.05").times(Ratio::from_basis_points(9000)).minor, 4);
    }

    #[test]
    fn ratio_against_no_revenue_is_undefined() {
        assert_eq!(eur("10").ratio_to(eur("0")), None);
        assert_eq!(eur("80").ratio_to(eur("100")), Some(Ratio::from_basis_points(8000)));
    }

    #[test]
    fn ratios_parse_from_decimals_and_print_as_percent() {
        let r = Ratio::from_decimal(Decimal::from_str("0.9").unwrap()).unwrap();
        assert_eq!(r.basis_points, 9000);
        assert_eq!(r.to_string(), "90%");
        assert_eq!(Ratio::from_basis_points(8125).to_string(), "81.25%");
        assert_eq!(r.complement().basis_points, 1000);
        assert!(Ratio::from_decimal(Decimal::from_str("-0.1").unwrap()).is_err());
        assert!(Ratio::from_decimal(Decimal::from_str("0.123456").unwrap()).is_err());
        assert!((Ratio::from_basis_points(8125).as_percent() - 81.25).abs() < 1e-9);
    }

    #[test]
    fn currency_codes_are_validated() {
        assert_eq!("USD".parse::<Currency>().unwrap(), Currency::USD);
        assert!("eur".parse::<Currency>().is_err());
        assert!("EURO".parse::<Currency>().is_err());
        let json = serde_json::to_string(&Currency::EUR).unwrap();
        assert_eq!(json, "\"EUR\"");
        assert!(serde_json::from_str::<Currency>("\"xx\"").is_err());
        assert_eq!(format!("{:?}", Currency::EUR), "EUR");
    }

    #[test]
    fn mean_rounds_down_and_handles_empty() {
        assert_eq!(Money::mean(&[]), None);
        assert_eq!(Money::mean(&[eur("1"), eur("0.02")]).unwrap().minor, 51);
    }
}

/// Explicit exchange rates into one target currency: `USD=0.93` means one US dollar is
/// worth 0.93 of the target. Converting from a currency with no rate is an error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FxRates {
    rates: std::collections::BTreeMap<Currency, Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    #[error("no FX rate for {from} -> {to}: configure one (e.g. {from}=1.08)")]
    MissingRate { from: Currency, to: Currency },
    #[error("'{0}' is not CUR=RATE (e.g. USD=0.93)")]
    BadSpec(String),
    #[error("{0} {1} is too large to hold")]
    Overflow(String, Currency),
}

impl FxRates {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, from: Currency, rate: Decimal) -> Self {
        self.rates.insert(from, rate);
        self
    }

    pub fn set(&mut self, from: Currency, rate: Decimal) {
        self.rates.insert(from, rate);
    }

    /// Parses `USD=0.93,GBP=1.17` (commas or whitespace between pairs; empty is fine).
    pub fn parse_list(spec: &str) -> Result<Self, FxError> {
        let mut rates = FxRates::new();
        for pair in spec.split([',', ' ', '\n']).filter(|p| !p.trim().is_empty()) {
            let (currency, rate) = parse_pair(pair)?;
            rates.set(currency, rate);
        }
        Ok(rates)
    }

    /// The rate applied from `from` to `to` (1 when they are the same).
    pub fn rate(&self, from: Currency, to: Currency) -> Result<Decimal, FxError> {
        if from == to {
            return Ok(Decimal::ONE);
        }
        self.rates.get(&from).copied().ok_or(FxError::MissingRate { from, to })
    }

    /// Converts an exact amount in major units, rounding half away from zero to the
    /// target's minor unit.
    pub fn convert(&self, amount: Decimal, from: Currency, to: Currency) -> Result<Money, FxError> {
        let converted = amount * self.rate(from, to)?;
        Money::round_from_decimal(converted, to).map_err(|_| FxError::Overflow(converted.to_string(), to))
    }
}

/// `USD=0.93` -> (USD, 0.93).
pub fn parse_pair(pair: &str) -> Result<(Currency, Decimal), FxError> {
    let (currency, rate) = pair.trim().split_once('=').ok_or_else(|| FxError::BadSpec(pair.to_string()))?;
    let currency: Currency =
        currency.trim().to_ascii_uppercase().parse().map_err(|_| FxError::BadSpec(pair.to_string()))?;
    let rate = Decimal::from_str(rate.trim()).map_err(|_| FxError::BadSpec(pair.to_string()))?;
    if rate <= Decimal::ZERO {
        return Err(FxError::BadSpec(pair.to_string()));
    }
    Ok((currency, rate))
}

#[cfg(test)]
mod fx_tests {
    use super::*;

    #[test]
    fn conversion_uses_the_configured_rate_and_rounds_to_the_cent() {
        let fx = FxRates::parse_list("USD=0.93, gbp=1.17").unwrap();
        let m = fx.convert(Decimal::from_str("10.005").unwrap(), Currency::USD, Currency::EUR).unwrap();
        assert_eq!(m.minor, 930); // 9.30465 -> 9.30
        let gbp: Currency = "GBP".parse().unwrap();
        assert_eq!(fx.rate(gbp, Currency::EUR).unwrap(), Decimal::from_str("1.17").unwrap());
        assert_eq!(fx.convert(Decimal::ONE, Currency::EUR, Currency::EUR).unwrap().minor, 100);
        let jpy: Currency = "JPY".parse().unwrap();
        let yen = FxRates::parse_list("EUR=162.4").unwrap();
        assert_eq!(
            yen.convert(Decimal::from_str("10.01").unwrap(), Currency::EUR, jpy).unwrap().minor,
            1_626
        );
    }

    #[test]
    fn a_currency_without_a_rate_is_a_clear_error() {
        let err = FxRates::new().convert(Decimal::ONE, Currency::USD, Currency::EUR).unwrap_err();
        assert_eq!(err.to_string(), "no FX rate for USD -> EUR: configure one (e.g. USD=1.08)");
    }

    #[test]
    fn bad_rate_specs_are_refused() {
        for spec in ["USD", "USD=abc", "US=1", "USD=0", "USD=-1"] {
            assert!(FxRates::parse_list(spec).is_err(), "{spec}");
        }
        assert_eq!(FxRates::parse_list("").unwrap(), FxRates::new());
        assert_eq!(
            FxRates::new().with(Currency::USD, Decimal::ONE).rate(Currency::USD, Currency::EUR).unwrap(),
            Decimal::ONE
        );
    }
}
