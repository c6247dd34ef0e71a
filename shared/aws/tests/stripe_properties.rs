//! Promises the MRR rules keep on any account, checked on generated subscriptions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use proptest::prelude::*;
use revscale_aws::stripe::model::Subscription;
use revscale_aws::stripe::{Lookups, compute};
use revscale_engine::Currency;
use revscale_engine::money::FxRates;
use rust_decimal::Decimal;
use serde_json::{Value, json};

fn fx() -> FxRates {
    FxRates::parse_list("USD=0.93 KWD=3.01 JPY=0.0061").unwrap()
}

prop_compose! {
    fn a_price()(
        currency in prop::sample::select(vec!["eur", "usd", "kwd", "jpy"]),
        amount in 0i64..5_000_000,
        interval in prop::sample::select(vec!["day", "week", "month", "year"]),
        count in 1u32..4,
        package in prop::option::of((1u64..2_000, any::<bool>())),
    ) -> (String, Value) {
        let transform = package.map(|(divide_by, up)| json!({"divide_by": divide_by, "round": if up { "up" } else { "down" }}));
        (currency.to_string(), json!({"id": "price", "currency": currency, "unit_amount": amount, "billing_scheme": "per_unit",
            "transform_quantity": transform, "recurring": {"interval": interval, "interval_count": count, "usage_type": "licensed"}}))
    }
}

prop_compose! {
    fn a_discount()(
        id in 0u8..4,
        forever in any::<bool>(),
        percent in prop::option::of(0u32..=10_000),
        amount_off in 0i64..2_000_000,
    ) -> Value {
        let terms = match percent {
            Some(bp) => json!({"percent_off": f64::from(bp) / 100.0}),
            None => json!({"amount_off": amount_off, "currency": "eur", "currency_options":
                {"usd": {"amount_off": amount_off}, "kwd": {"amount_off": amount_off}, "jpy": {"amount_off": amount_off}}}),
        };
        let mut coupon = json!({"id": format!("c{id}"), "duration": if forever { "forever" } else { "once" }});
        for (k, v) in terms.as_object().unwrap() {
            coupon[k] = v.clone();
        }
        // Stripe's ids are unique: the same id is always the same discount (the
        // generator still repeats whole discounts, which exercises de-duplication).
        let id = format!("di_{id}_{forever}_{percent:?}_{amount_off}");
        json!({"id": id, "source": {"type": "coupon", "coupon": coupon}})
    }
}

prop_compose! {
    fn a_subscription()(
        (currency, price) in a_price(),
        quantities in prop::collection::vec(0u64..10_000, 1..4),
        discounts in prop::collection::vec(a_discount(), 0..3),
        item_discounts in prop::collection::vec(a_discount(), 0..2),
        customer in 0u8..5,
        status in prop::sample::select(vec!["active", "past_due", "canceled", "trialing"]),
    ) -> Value {
        let items: Vec<Value> = quantities.iter().enumerate().map(|(i, q)| {
            let mut item = json!({"id": format!("si_{i}"), "price": price.clone(), "quantity": q, "discounts": []});
            if i == 0 {
                item["discounts"] = json!(item_discounts.clone());
            }
            item
        }).collect();
        json!({"id": "sub", "status": status, "customer": format!("cus_{customer}"), "currency": currency,
               "discounts": discounts, "items": {"data": items, "has_more": false}})
    }
}

fn subscriptions(list: Vec<Value>) -> Vec<Subscription> {
    let list: Vec<Value> = list
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s["id"] = format!("sub_{i}").into();
            s
        })
        .collect();
    serde_json::from_value(Value::Array(list)).expect("generated subscriptions parse")
}

fn tiered(mode: &str, rates: &[(Option<u64>, i64, i64)]) -> Value {
    let tiers: Vec<Value> = rates
        .iter()
        .map(|(up_to, unit, flat)| json!({"up_to": up_to, "unit_amount": unit, "flat_amount": flat}))
        .collect();
    json!({"id": "price_t", "currency": "eur", "billing_scheme": "tiered", "tiers_mode": mode, "tiers": tiers,
           "recurring": {"interval": "month", "interval_count": 1}})
}

fn mrr_of(price: &Value, quantity: u64) -> i64 {
    let sub = json!([{"id": "s", "status": "active", "customer": "c", "currency": "eur",
                      "items": {"data": [{"id": "si", "price": price, "quantity": quantity}]}}]);
    let subs: Vec<Subscription> = serde_json::from_value(sub).unwrap();
    compute(&subs, &Lookups::default(), Currency::EUR, &fx()).unwrap().mrr.minor
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Each subscription's explanation adds up: its counted items less its counted
    /// discounts (never below zero) is its monthly figure; and no subscription counts
    /// below zero or with a status that is not revenue.
    #[test]
    fn each_explanation_adds_up_to_its_subscriptions_figure(list in prop::collection::vec(a_subscription(), 0..6)) {
        let report = compute(&subscriptions(list), &Lookups::default(), Currency::EUR, &fx()).unwrap();
        for s in &report.subscriptions {
            let items: Decimal = s.items.iter().filter(|i| i.counted).map(|i| i.monthly).sum();
            let offs: Decimal = s.discounts.iter().filter(|d| d.counted).map(|d| d.monthly_off).sum();
            let expected = (items - offs).max(Decimal::ZERO);
            // Decimal keeps 28 significant digits: equal to within the last of them.
            let tolerance = expected.abs().max(Decimal::ONE) * Decimal::new(1, 20);
            prop_assert!((expected - s.monthly).abs() <= tolerance, "{} vs {} for {}", expected, s.monthly, s.id);
            prop_assert!(s.amount.minor >= 0);
            prop_assert!(s.status == "active" || s.status == "past_due");
            prop_assert!(s.discounts.iter().all(|d| d.counted == d.terms.contains("forever")));
        }
    }

    /// Discounts only ever lower MRR: the same account without any is worth as much or more.
    #[test]
    fn discounts_never_raise_mrr(list in prop::collection::vec(a_subscription(), 1..5)) {
        let with = compute(&subscriptions(list.clone()), &Lookups::default(), Currency::EUR, &fx()).unwrap();
        let bare: Vec<Value> = list.into_iter().map(|mut s| {
            s["discounts"] = json!([]);
            for item in s["items"]["data"].as_array_mut().unwrap() {
                item["discounts"] = json!([]);
            }
            s
        }).collect();
        let without = compute(&subscriptions(bare), &Lookups::default(), Currency::EUR, &fx()).unwrap();
        prop_assert!(with.mrr.minor <= without.mrr.minor, "{} > {}", with.mrr, without.mrr);
    }

    /// Only forever discounts count: removing the others never changes MRR.
    #[test]
    fn discounts_that_end_never_change_mrr(list in prop::collection::vec(a_subscription(), 1..5)) {
        let with = compute(&subscriptions(list.clone()), &Lookups::default(), Currency::EUR, &fx()).unwrap();
        let only_forever: Vec<Value> = list.into_iter().map(|mut s| {
            let keep = |d: &Value| d["source"]["coupon"]["duration"] == "forever";
            let discounts: Vec<Value> = s["discounts"].as_array().unwrap().iter().filter(|d| keep(d)).cloned().collect();
            s["discounts"] = Value::Array(discounts);
            for item in s["items"]["data"].as_array_mut().unwrap() {
                let kept: Vec<Value> = item["discounts"].as_array().unwrap().iter().filter(|d| keep(d)).cloned().collect();
                item["discounts"] = Value::Array(kept);
            }
            s
        }).collect();
        let without = compute(&subscriptions(only_forever), &Lookups::default(), Currency::EUR, &fx()).unwrap();
        prop_assert_eq!(with.mrr, without.mrr);
    }

    /// With non-negative rates, graduated pricing never charges less for more units,
    /// and a single-tier price is the same graduated or volume.
    #[test]
    fn graduated_pricing_never_falls_as_quantity_grows(
        bounds in prop::collection::btree_set(1u64..500, 0..4),
        rates in prop::collection::vec((0i64..10_000, 0i64..50_000), 5),
        q in 0u64..1_000,
        single in (0i64..10_000, 0i64..50_000),
    ) {
        let mut tiers: Vec<(Option<u64>, i64, i64)> =
            bounds.iter().zip(&rates).map(|(b, (u, f))| (Some(*b), *u, *f)).collect();
        tiers.push((None, rates[4].0, rates[4].1));
        let price = tiered("graduated", &tiers);
        prop_assert!(mrr_of(&price, q) <= mrr_of(&price, q + 1));
        let one = [(None, single.0, single.1)];
        prop_assert_eq!(mrr_of(&tiered("graduated", &one), q), mrr_of(&tiered("volume", &one), q));
    }

    /// Packages rounded up always cover the quantity, rounded down never exceed it.
    #[test]
    fn packages_cover_the_quantity_as_rounded(q in 0u64..1_000_000, divide_by in 1u64..5_000) {
        let package = |round: &str| json!({"id": "p", "currency": "eur", "unit_amount": 100, "billing_scheme": "per_unit",
            "transform_quantity": {"divide_by": divide_by, "round": round}, "recurring": {"interval": "month"}});
        let up = u64::try_from(mrr_of(&package("up"), q) / 100).unwrap();
        let down = u64::try_from(mrr_of(&package("down"), q) / 100).unwrap();
        prop_assert!(up * divide_by >= q && (up == 0 || (up - 1) * divide_by < q));
        prop_assert!(down * divide_by <= q && (down + 1) * divide_by > q);
    }
}
