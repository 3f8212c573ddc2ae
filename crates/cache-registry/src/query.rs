//! Search filters, turned into parameterized SQL.
//!
//! The SQL text is built only from fixed fragments of this file; every name, value, pattern and
//! URI is a bound parameter. So no attribute name or value can change the statement, and the
//! text depends only on the filter's shape, which keeps prepared statements reusable.

use std::time::SystemTime;

use rusqlite::types::Value as SqlValue;
use serde::Serialize;

use crate::attr::{self, AttrValue, Kind};
use crate::error::{Error, Result};
use crate::key::{canonical_params, key_of};
use crate::status::Status;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

#[derive(Debug, Clone)]
enum AttrTest {
    Compare(Op, AttrValue),
    In(Vec<AttrValue>),
    Like(String),
    Exists,
}

#[derive(Debug, Clone)]
enum Node {
    All,
    Uri(String),
    UriLike(String),
    Key(String),
    Params(String),
    Status(Status),
    Label(String),
    Created(Op, i64),
    LastRead(Op, i64),
    Attr(String, AttrTest),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
}

/// Which items a search matches: conditions on the record and on attributes, combined with
/// [`and`](Filter::and), [`or`](Filter::or) and [`not`](Filter::not).
///
/// ```
/// use cache_registry::{Filter, Status};
///
/// let wide_surveys = Filter::status(Status::Ready)
///     .and(Filter::attr("rows").gt(1000))
///     .and(Filter::attr("source").eq("survey").or(Filter::attr("source").like("census%")));
/// # let _ = wide_surveys;
/// ```
///
/// An attribute condition matches only items that have the attribute with a comparable kind:
/// numbers (ints and floats) compare with numbers, text with text, datetimes with datetimes,
/// bools with bools; so `attr("rows").ne(3)` does not match an item without `rows`.
/// [`not`](Filter::not) is the exact complement of what it wraps, so
/// `not(attr("rows").eq(3))` does, as `not(label("x"))` matches unlabelled items.
#[derive(Debug, Clone)]
pub struct Filter(Node);

/// The start of an attribute condition; see [`Filter::attr`].
///
/// ```
/// use cache_registry::Filter;
///
/// let layers = Filter::attr("model.layers");
/// let deep = layers.clone().ge(12).and(layers.is_in([12, 24, 48]));
/// # let _ = deep;
/// ```
#[derive(Debug, Clone)]
#[must_use = "an attribute path alone is not a filter: compare it with eq, gt, is_in, like, exists..."]
pub struct AttrFilter {
    path: String,
}

impl AttrFilter {
    fn test(self, test: AttrTest) -> Filter {
        Filter(Node::Attr(self.path, test))
    }

    /// Equal to `value`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("n").eq(2))?, 1);
    /// assert_eq!(count(Filter::attr("n").eq(2.0))?, 1, "numbers compare across int and float");
    /// # Ok(())
    /// # }
    /// ```
    pub fn eq(self, value: impl Into<AttrValue>) -> Filter {
        self.test(AttrTest::Compare(Op::Eq, value.into()))
    }

    /// Present and not equal to `value`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("n").ne(2))?, 2);
    /// assert_eq!(count(Filter::attr("missing").ne(2))?, 0, "only items that have it");
    /// # Ok(())
    /// # }
    /// ```
    pub fn ne(self, value: impl Into<AttrValue>) -> Filter {
        self.test(AttrTest::Compare(Op::Ne, value.into()))
    }

    /// Less than `value`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("n").lt(2))?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn lt(self, value: impl Into<AttrValue>) -> Filter {
        self.test(AttrTest::Compare(Op::Lt, value.into()))
    }

    /// Less than or equal to `value`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("n").le(2))?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn le(self, value: impl Into<AttrValue>) -> Filter {
        self.test(AttrTest::Compare(Op::Le, value.into()))
    }

    /// Greater than `value`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("n").gt(2))?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn gt(self, value: impl Into<AttrValue>) -> Filter {
        self.test(AttrTest::Compare(Op::Gt, value.into()))
    }

    /// Greater than or equal to `value`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("n").ge(2))?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ge(self, value: impl Into<AttrValue>) -> Filter {
        self.test(AttrTest::Compare(Op::Ge, value.into()))
    }

    /// Equal to one of `values`, which must all be of one kind (numbers count as one). An
    /// empty list matches nothing.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("source").is_in(["survey", "census"]))?, 2);
    /// assert_eq!(count(Filter::attr("n").is_in(Vec::<i64>::new()))?, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_in<V: Into<AttrValue>>(self, values: impl IntoIterator<Item = V>) -> Filter {
        self.test(AttrTest::In(values.into_iter().map(Into::into).collect()))
    }

    /// Text matching the SQL `LIKE` `pattern`: `%` is any run, `_` any one character, ASCII
    /// case is ignored.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("source").like("census%"))?, 2);
    /// assert_eq!(count(Filter::attr("source").like("SURVEY"))?, 1, "ASCII case is ignored");
    /// # Ok(())
    /// # }
    /// ```
    pub fn like(self, pattern: impl Into<String>) -> Filter {
        self.test(AttrTest::Like(pattern.into()))
    }

    /// Present with any value (or, for a namespace, the exact path holds a leaf value).
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("source").exists())?, 3);
    /// assert_eq!(count(Filter::attr("colour").exists())?, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn exists(self) -> Filter {
        self.test(AttrTest::Exists)
    }
}

impl Filter {
    /// Every item.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::all())?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn all() -> Filter {
        Filter(Node::All)
    }

    /// A condition on the attribute at dotted `path` (`"rows"`, `"model.layers"`).
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::attr("n").gt(1).and(Filter::attr("source").like("census%")))?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn attr(path: impl Into<String>) -> AttrFilter {
        AttrFilter { path: path.into() }
    }

    /// Items created for exactly this URI.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::uri("https://example.org/2.csv"))?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn uri(uri: impl Into<String>) -> Filter {
        Filter(Node::Uri(uri.into()))
    }

    /// Items whose URI matches the SQL `LIKE` `pattern` (`https://example.org/%`).
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::uri_like("https://example.org/%"))?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn uri_like(pattern: impl Into<String>) -> Filter {
        Filter(Node::UriLike(pattern.into()))
    }

    /// Items with exactly these params, whatever the URI.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for params that are not JSON.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::params(&serde_json::json!({"n": 3}))?)?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn params<P: Serialize + ?Sized>(params: &P) -> Result<Filter> {
        Ok(Filter(Node::Params(canonical_params(params)?)))
    }

    /// Every version of `uri` + `params`.
    ///
    /// # Errors
    ///
    /// As [`params`](Filter::params).
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// let every_version = Filter::item("https://example.org/1.csv", &serde_json::json!({"n": 1}))?;
    /// assert_eq!(count(every_version)?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn item<P: Serialize + ?Sized>(uri: &str, params: &P) -> Result<Filter> {
        Ok(Filter(Node::Key(key_of(uri, &canonical_params(params)?))))
    }

    /// Every version with this [key](crate::item_key).
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// let key = cache_registry::item_key("https://example.org/1.csv", &serde_json::json!({"n": 1}))?;
    /// assert_eq!(count(Filter::key(key))?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn key(key: impl Into<String>) -> Filter {
        Filter(Node::Key(key.into()))
    }

    /// Items in `status`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::status(cache_registry::Status::Uninitialized))?, 3);
    /// assert_eq!(count(Filter::status(cache_registry::Status::Ready))?, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn status(status: Status) -> Filter {
        Filter(Node::Status(status))
    }

    /// Items with this label.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::label("odd"))?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn label(label: impl Into<String>) -> Filter {
        Filter(Node::Label(label.into()))
    }

    /// Items created at or after `from` and before `to`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// let now = std::time::SystemTime::now();
    /// let hour = std::time::Duration::from_secs(3600);
    /// assert_eq!(count(Filter::created_between(now - hour, now + hour))?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn created_between(from: SystemTime, to: SystemTime) -> Filter {
        Filter::created_after(from).and(Filter::created_before(to))
    }

    /// Items created at or after `time`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    /// assert_eq!(count(Filter::created_after(hour_ago))?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn created_after(time: SystemTime) -> Filter {
        Filter(Node::Created(Op::Ge, attr::micros(time)))
    }

    /// Items created before `time`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    /// assert_eq!(count(Filter::created_before(hour_ago))?, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn created_before(time: SystemTime) -> Filter {
        Filter(Node::Created(Op::Lt, attr::micros(time)))
    }

    /// Items last read before `time` (never-read items do not match).
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// let now = std::time::SystemTime::now();
    /// assert_eq!(count(Filter::last_read_before(now))?, 0, "never-read items have no read time");
    /// # Ok(())
    /// # }
    /// ```
    pub fn last_read_before(time: SystemTime) -> Filter {
        Filter(Node::LastRead(Op::Lt, attr::micros(time)))
    }

    /// Items last read at or after `time`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    /// assert_eq!(count(Filter::last_read_after(hour_ago))?, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn last_read_after(time: SystemTime) -> Filter {
        Filter(Node::LastRead(Op::Ge, attr::micros(time)))
    }

    /// Both this and `other`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::label("odd").and(Filter::attr("n").gt(1)))?, 1);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn and(self, other: Filter) -> Filter {
        Filter(match self.0 {
            Node::And(mut nodes) => {
                nodes.push(other.0);
                Node::And(nodes)
            }
            node => Node::And(vec![node, other.0]),
        })
    }

    /// This or `other`.
    ///
    /// ```
    /// use cache_registry::Filter;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(count(Filter::label("even").or(Filter::attr("n").eq(3)))?, 2);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn or(self, other: Filter) -> Filter {
        Filter(match self.0 {
            Node::Or(mut nodes) => {
                nodes.push(other.0);
                Node::Or(nodes)
            }
            node => Node::Or(vec![node, other.0]),
        })
    }

    /// Items this filter does not match: exactly the complement, including items that lack
    /// the attribute, label or read time the filter tests.
    ///
    /// ```
    /// use cache_registry::{Filter, NewItem, Registry};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let registry = Registry::open(dir.path())?;
    /// registry.create("u", &1, &NewItem::new().label("nightly"))?;
    /// registry.create("u", &2, &NewItem::new().label("weekly"))?;
    /// registry.create("u", &3, &NewItem::new())?;
    /// // The exact complement: items without a label are included.
    /// assert_eq!(registry.search(Filter::not(Filter::label("nightly")))?.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    #[allow(clippy::should_implement_trait, reason = "`Filter::not(f)` reads better than `!f` in a query")]
    pub fn not(filter: Filter) -> Filter {
        Filter(Node::Not(Box::new(filter.0)))
    }
}

/// Result order of a [`Query`].
///
/// ```
/// use cache_registry::{Filter, NewItem, Order, Query, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// for n in 1..=3 {
///     registry.create("https://example.org/a.csv", &n, &NewItem::new())?;
/// }
/// let oldest = registry.search(Query::new(Filter::all()).order(Order::OldestFirst).limit(1))?;
/// assert_eq!(oldest[0].params(), "1");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Order {
    /// Most recently created first.
    #[default]
    NewestFirst,
    /// Oldest first.
    OldestFirst,
}

/// A [`Filter`] with an order and an optional limit.
///
/// ```
/// use cache_registry::{Filter, NewItem, Query, Registry};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let registry = Registry::open(dir.path())?;
/// for n in 1..=3 {
///     registry.create("https://example.org/a.csv", &n, &NewItem::new().attr("n", n))?;
/// }
/// let newest_two = registry.search(Query::new(Filter::attr("n").ge(1)).limit(2))?;
/// assert_eq!(newest_two.iter().map(|item| item.params()).collect::<Vec<_>>(), ["3", "2"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Query {
    filter: Filter,
    order: Order,
    limit: Option<u64>,
}

impl Query {
    /// All matches of `filter`, newest first.
    ///
    /// ```
    /// use cache_registry::{Filter, Query};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// let query = Query::new(Filter::label("odd"));
    /// assert_eq!(registry.search(query)?.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(filter: Filter) -> Query {
        Query { filter, order: Order::default(), limit: None }
    }

    /// At most `limit` items.
    ///
    /// ```
    /// use cache_registry::{Filter, Query};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// assert_eq!(registry.search(Query::new(Filter::all()).limit(2))?.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn limit(mut self, limit: u64) -> Query {
        self.limit = Some(limit);
        self
    }

    /// The result order.
    ///
    /// ```
    /// use cache_registry::{Filter, Order, Query};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let registry = cache_registry::Registry::open(dir.path())?;
    /// # for (n, source, label) in [(1, "survey", "odd"), (2, "census", "even"), (3, "census-b", "odd")] {
    /// #     let options = cache_registry::NewItem::new().label(label).attr("n", n).attr("source", source);
    /// #     registry.create(&format!("https://example.org/{n}.csv"), &serde_json::json!({"n": n}), &options)?;
    /// # }
    /// # let count = |filter: Filter| registry.search(filter).map(|items| items.len());
    /// # let _ = &count;
    /// let oldest = registry.search(Query::new(Filter::all()).order(Order::OldestFirst))?;
    /// assert_eq!(oldest[0].uri(), "https://example.org/1.csv");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn order(mut self, order: Order) -> Query {
        self.order = order;
        self
    }

    pub(crate) fn to_sql(&self, select: &str) -> Result<(String, Vec<SqlValue>)> {
        let mut sql = String::with_capacity(select.len() + 128);
        sql.push_str(select);
        sql.push_str(" WHERE ");
        let mut values = Vec::new();
        write_node(&self.filter.0, false, &mut sql, &mut values)?;
        sql.push_str(match self.order {
            Order::NewestFirst => " ORDER BY id DESC",
            Order::OldestFirst => " ORDER BY id",
        });
        if let Some(limit) = self.limit {
            sql.push_str(" LIMIT ?");
            values.push(SqlValue::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        }
        Ok((sql, values))
    }
}

impl From<Filter> for Query {
    fn from(filter: Filter) -> Query {
        Query::new(filter)
    }
}

/// How selective a condition is likely to be when it drives an `AND`: lower is better.
/// Key, URI and params conditions use the items indexes; then attribute equality, ranges,
/// and last presence tests. `None`: it cannot drive (or has no index of its own).
fn drive_rank(node: &Node) -> Option<u8> {
    match node {
        Node::Key(_) | Node::Uri(_) | Node::Params(_) => Some(0),
        Node::Attr(_, AttrTest::Compare(Op::Eq, _) | AttrTest::In(_)) => Some(1),
        Node::Attr(_, AttrTest::Compare(..) | AttrTest::Like(_)) => Some(2),
        Node::Attr(_, AttrTest::Exists) => Some(3),
        _ => None,
    }
}

/// Writes `node`. An attribute condition is written either as a driver,
/// `id IN (SELECT item_id FROM attrs ...)`, which walks the `(name, kind, value)` index once,
/// or, when `probe` is set, as `EXISTS (... WHERE item_id = items.id ...)`, one primary-key
/// lookup per candidate row. Inside an `AND`, only the most selective condition drives and
/// the other attribute conditions probe the rows it found, so SQLite never materializes a
/// large set (such as every `n < 20000`) just to intersect it with a small one.
fn write_node(node: &Node, probe: bool, sql: &mut String, values: &mut Vec<SqlValue>) -> Result<()> {
    let mut column = |sql: &mut String, fragment: &str, value: SqlValue| {
        sql.push_str(fragment);
        values.push(value);
    };
    match node {
        Node::All => sql.push('1'),
        Node::Uri(uri) => column(sql, "uri = ?", SqlValue::Text(uri.clone())),
        Node::UriLike(pattern) => column(sql, "uri LIKE ?", SqlValue::Text(pattern.clone())),
        Node::Key(key) => column(sql, "key = ?", SqlValue::Text(key.clone())),
        Node::Params(params) => column(sql, "params = ?", SqlValue::Text(params.clone())),
        Node::Status(status) => column(sql, "status = ?", SqlValue::Integer(status.code())),
        // `label` and `last_read` may be NULL, and `NULL = x` is NULL, which `NOT` keeps NULL:
        // `not(label("a"))` would then drop every unlabelled item. Each condition on them is
        // written to be true or false, never NULL (`IS` with a non-NULL value still uses the
        // index), so `not` is the exact complement. The other columns are NOT NULL, and
        // attribute conditions are `IN`/`EXISTS` over non-NULL ids.
        Node::Label(label) => column(sql, "label IS ?", SqlValue::Text(label.clone())),
        Node::Created(op, time) => {
            sql.push_str("created ");
            column(sql, op.sql(), SqlValue::Integer(*time));
            sql.push_str(" ?");
        }
        Node::LastRead(op, time) => {
            sql.push_str("(last_read IS NOT NULL AND last_read ");
            column(sql, op.sql(), SqlValue::Integer(*time));
            sql.push_str(" ?)");
        }
        Node::Attr(path, test) => write_attr(path, test, probe, sql, values)?,
        Node::And(nodes) | Node::Or(nodes) => {
            let is_and = matches!(node, Node::And(_));
            let (joiner, empty) = if is_and { (" AND ", "1") } else { (" OR ", "0") };
            if nodes.is_empty() {
                sql.push_str(empty);
            }
            let driver = if is_and {
                nodes.iter().enumerate().filter_map(|(index, inner)| Some((drive_rank(inner)?, index))).min()
            } else {
                None
            };
            for (index, inner) in nodes.iter().enumerate() {
                sql.push_str(if index == 0 { "(" } else { joiner });
                let probe_this = driver.is_some_and(|(_, driver)| driver != index);
                write_node(inner, probe_this, sql, values)?;
            }
            if !nodes.is_empty() {
                sql.push(')');
            }
        }
        Node::Not(inner) => {
            sql.push_str("NOT (");
            write_node(inner, false, sql, values)?;
            sql.push(')');
        }
    }
    Ok(())
}

/// The stored kinds a query value compares with: numbers with numbers, others with their own.
fn family(value: &AttrValue) -> Result<(&'static [Kind], SqlValue)> {
    let Some((kind, sql)) = value.to_sql("search")? else {
        return Err(Error::invalid_input("search", "a map cannot be compared: name a path inside it"));
    };
    let kinds: &'static [Kind] = match kind {
        Kind::Int | Kind::Float => &[Kind::Int, Kind::Float],
        Kind::Text => &[Kind::Text],
        Kind::DateTime => &[Kind::DateTime],
        Kind::Bool => &[Kind::Bool],
    };
    Ok((kinds, sql))
}

fn write_attr(path: &str, test: &AttrTest, probe: bool, sql: &mut String, values: &mut Vec<SqlValue>) -> Result<()> {
    attr::check_path(path, "search")?;
    sql.push_str(if probe {
        "EXISTS (SELECT 1 FROM attrs WHERE item_id = items.id AND name = ?"
    } else {
        "id IN (SELECT item_id FROM attrs WHERE name = ?"
    });
    values.push(SqlValue::Text(path.to_owned()));
    let push_kinds = |sql: &mut String, values: &mut Vec<SqlValue>, kinds: &[Kind]| {
        sql.push_str(" AND kind IN (");
        for (index, kind) in kinds.iter().enumerate() {
            sql.push_str(if index == 0 { "?" } else { ", ?" });
            values.push(SqlValue::Integer(kind.code()));
        }
        sql.push(')');
    };
    match test {
        AttrTest::Exists => {}
        AttrTest::Compare(op, value) => {
            let (kinds, value) = family(value)?;
            push_kinds(sql, values, kinds);
            sql.push_str(" AND value ");
            sql.push_str(op.sql());
            sql.push_str(" ?");
            values.push(value);
        }
        AttrTest::Like(pattern) => {
            push_kinds(sql, values, &[Kind::Text]);
            sql.push_str(" AND value LIKE ?");
            values.push(SqlValue::Text(pattern.clone()));
        }
        AttrTest::In(list) => {
            let Some(first) = list.first() else {
                // Matches nothing, and still binds the path so the statement shape stays valid.
                sql.push_str(" AND 0)");
                return Ok(());
            };
            let (kinds, _) = family(first)?;
            push_kinds(sql, values, kinds);
            sql.push_str(" AND value IN (");
            for (index, value) in list.iter().enumerate() {
                let (these, value) = family(value)?;
                if these != kinds {
                    return Err(Error::invalid_input("search", "an `in` list must hold values of one kind"));
                }
                sql.push_str(if index == 0 { "?" } else { ", ?" });
                values.push(value);
            }
            sql.push(')');
        }
    }
    sql.push(')');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_become_parameters_never_sql() {
        let hostile = "x'; DROP TABLE items; --";
        let query = Query::new(Filter::attr(hostile).eq(hostile).or(Filter::label(hostile)));
        let (sql, values) = query.to_sql("SELECT id FROM items").unwrap();
        assert!(!sql.contains("DROP"));
        assert!(values.contains(&SqlValue::Text(hostile.to_owned())));
    }

    #[test]
    fn sql_depends_only_on_the_filter_shape() {
        let one = Query::new(Filter::attr("a").gt(1).and(Filter::status(Status::Ready))).to_sql("S").unwrap().0;
        let two = Query::new(Filter::attr("zzz").gt(7.5).and(Filter::status(Status::Trash))).to_sql("S").unwrap().0;
        assert_eq!(one, two);
    }

    #[test]
    fn inside_an_and_the_most_selective_condition_drives_and_the_rest_probe() {
        let range_then_eq = Filter::attr("n").lt(5).and(Filter::attr("group").eq("g"));
        let (sql, _) = Query::new(range_then_eq).to_sql("S").unwrap();
        assert_eq!(sql.matches("id IN (").count(), 1);
        assert_eq!(sql.matches("EXISTS (").count(), 1);
        assert!(sql.find("EXISTS").unwrap() < sql.find("id IN").unwrap(), "the equality drives: {sql}");
        let keyed = Filter::key("k").and(Filter::attr("n").eq(1));
        let (sql, _) = Query::new(keyed).to_sql("S").unwrap();
        assert_eq!(sql.matches("EXISTS (").count(), 1, "the key index drives: {sql}");
        let either = Filter::attr("n").lt(5).or(Filter::attr("group").eq("g"));
        let (sql, _) = Query::new(either).to_sql("S").unwrap();
        assert_eq!(sql.matches("id IN (").count(), 2, "each side of an OR drives itself: {sql}");
    }

    #[test]
    fn mixed_in_lists_and_maps_are_invalid() {
        let mixed = Query::new(Filter::attr("a").is_in([AttrValue::Int(1), AttrValue::from("x")]));
        assert!(mixed.to_sql("S").is_err());
        let map = Query::new(Filter::attr("a").eq(crate::Attributes::new()));
        assert!(map.to_sql("S").is_err());
        let empty_part = Query::new(Filter::attr("a..b").exists());
        assert!(empty_part.to_sql("S").is_err());
    }
}
