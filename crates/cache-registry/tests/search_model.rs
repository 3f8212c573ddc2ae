//! Search against a model: random filter trees over a fixed registry must select exactly the
//! items an in-memory evaluation of the same filter selects.

#![allow(clippy::unwrap_used, reason = "a test helper that fails should panic with the error")]

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, SystemTime};

use cache_registry::{Filter, NewItem, Registry, Status};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

/// One item of the fixture: optional int attributes `a` and `b`, optional text `t`, a status,
/// an optional label and whether it was ever read (the last two are nullable columns).
#[derive(Debug, Clone)]
struct Model {
    a: Option<i64>,
    b: Option<i64>,
    t: Option<&'static str>,
    ready: bool,
    label: Option<&'static str>,
    read: bool,
}

#[derive(Debug, Clone)]
enum Expr {
    Cmp(&'static str, u8, i64),
    In(&'static str, Vec<i64>),
    TextEq(&'static str),
    TextLike(&'static str),
    Ready,
    Label(&'static str),
    ReadSince,
    ReadBefore,
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

fn value(model: &Model, name: &str) -> Option<i64> {
    if name == "a" { model.a } else { model.b }
}

fn holds(expr: &Expr, model: &Model) -> bool {
    match expr {
        Expr::Cmp(name, op, k) => value(model, name).is_some_and(|v| match op {
            0 => v == *k,
            1 => v != *k,
            2 => v < *k,
            3 => v <= *k,
            4 => v > *k,
            _ => v >= *k,
        }),
        Expr::In(name, list) => value(model, name).is_some_and(|v| list.contains(&v)),
        Expr::TextEq(text) => model.t == Some(*text),
        // The patterns used are `x%` and `%y`.
        Expr::TextLike(pattern) => model.t.is_some_and(|t| match pattern.strip_suffix('%') {
            Some(prefix) => t.starts_with(prefix),
            None => t.ends_with(pattern.trim_start_matches('%')),
        }),
        Expr::Ready => model.ready,
        Expr::Label(label) => model.label == Some(*label),
        Expr::ReadSince => model.read,
        // Every read happened after the fixture's start; never-read items have no time.
        Expr::ReadBefore => false,
        Expr::And(items) => items.iter().all(|item| holds(item, model)),
        Expr::Or(items) => items.iter().any(|item| holds(item, model)),
        Expr::Not(inner) => !holds(inner, model),
    }
}

fn to_filter(expr: &Expr, start: SystemTime) -> Filter {
    match expr {
        Expr::Cmp(name, op, k) => {
            let attr = Filter::attr(*name);
            match op {
                0 => attr.eq(*k),
                1 => attr.ne(*k),
                2 => attr.lt(*k),
                3 => attr.le(*k),
                4 => attr.gt(*k),
                _ => attr.ge(*k),
            }
        }
        Expr::In(name, list) => Filter::attr(*name).is_in(list.iter().copied()),
        Expr::TextEq(text) => Filter::attr("t").eq(*text),
        Expr::TextLike(pattern) => Filter::attr("t").like(*pattern),
        Expr::Ready => Filter::status(Status::Ready),
        Expr::Label(label) => Filter::label(*label),
        Expr::ReadSince => Filter::last_read_after(start),
        Expr::ReadBefore => Filter::last_read_before(start),
        Expr::And(items) => {
            items.iter().map(|item| to_filter(item, start)).reduce(Filter::and).unwrap_or_else(Filter::all)
        }
        Expr::Or(items) => items
            .iter()
            .map(|item| to_filter(item, start))
            .reduce(Filter::or)
            .unwrap_or_else(|| Filter::not(Filter::all())),
        Expr::Not(inner) => Filter::not(to_filter(inner, start)),
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    let name = prop_oneof![Just("a"), Just("b")];
    let leaf = prop_oneof![
        (name.clone(), 0u8..6, 0i64..5).prop_map(|(name, op, k)| Expr::Cmp(name, op, k)),
        (name, prop::collection::vec(0i64..5, 0..3)).prop_map(|(name, list)| Expr::In(name, list)),
        prop_oneof![Just("xa"), Just("xb"), Just("ya")].prop_map(Expr::TextEq),
        prop_oneof![Just("x%"), Just("%a")].prop_map(Expr::TextLike),
        Just(Expr::Ready),
        prop_oneof![Just("nightly"), Just("weekly")].prop_map(Expr::Label),
        Just(Expr::ReadSince),
        Just(Expr::ReadBefore),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Expr::Or),
            inner.prop_map(|item| Expr::Not(Box::new(item))),
        ]
    })
}

#[test]
fn random_filters_select_what_the_model_selects() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(dir.path()).unwrap();
    let texts = [Some("xa"), Some("xb"), Some("ya"), None];
    let labels = [Some("nightly"), Some("weekly"), None];
    let start = SystemTime::now() - Duration::from_secs(1);
    let mut models = Vec::new();
    for index in 0..40i64 {
        let model = Model {
            a: (index % 7 != 6).then_some(index % 5),
            b: (index % 3 != 2).then_some((index * 3) % 5),
            t: texts[usize::try_from(index % 4).unwrap()],
            ready: index % 2 == 0,
            label: labels[usize::try_from(index % 3).unwrap()],
            read: index % 4 == 0,
        };
        let mut options = NewItem::new();
        if let Some(a) = model.a {
            options = options.attr("a", a);
        }
        if let Some(b) = model.b {
            // Half of the b values are floats, which compare with ints numerically.
            options = if index % 2 == 0 { options.attr("b", b) } else { options.attr("b", b as f64) };
        }
        if let Some(t) = model.t {
            options = options.attr("t", t);
        }
        if let Some(label) = model.label {
            options = options.label(label);
        }
        let item = registry.create("u", &json!({"index": index}), &options).unwrap();
        if model.ready {
            let mut writer = item.write().unwrap();
            writer.write_all(b"x").unwrap();
            let item = writer.commit().unwrap();
            if model.read {
                item.open().unwrap();
            }
        }
        models.push(model);
    }

    let mut runner = TestRunner::new(Config { cases: 200, ..Config::default() });
    runner
        .run(&expr(), |expr| {
            let expected: BTreeSet<i64> = (0..40).filter(|&index| holds(&expr, &models[index as usize])).collect();
            let found: BTreeSet<i64> = registry
                .search(to_filter(&expr, start))
                .unwrap()
                .iter()
                .map(|item| item.params_json().unwrap()["index"].as_i64().unwrap())
                .collect();
            prop_assert_eq!(found, expected, "{:?}", expr);
            Ok(())
        })
        .unwrap();
}
