//! Typed attributes: the values an item carries and searches match on.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::Value as SqlValue;

use crate::error::{Error, Result};

/// One attribute value.
///
/// Ints and floats compare with each other numerically in searches; text, datetimes and
/// bools compare only with their own kind. A [`Map`](AttrValue::Map) is a namespace: its
/// entries are stored under `outer.inner` paths and searched by that path.
///
/// ```
/// use std::time::SystemTime;
/// use cache_registry::AttrValue;
///
/// let size: usize = 1200;
/// assert_eq!(AttrValue::from(size).as_int(), Some(1200));
/// assert_eq!(AttrValue::from(0.5f32).as_float(), Some(0.5));
/// assert_eq!(AttrValue::from("eu").as_text(), Some("eu"));
/// assert!(AttrValue::from(SystemTime::now()).as_datetime().is_some());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AttrValue {
    /// A signed 64-bit integer.
    Int(i64),
    /// An unsigned integer from a `u64` or `usize` too large for an [`Int`](AttrValue::Int).
    ///
    /// Attributes store integers as `i64`, so a value above `i64::MAX` cannot be stored: a
    /// create, `set_attributes` or search with one fails with
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the attribute, never
    /// a wrap to a negative number. `From<u64>` and `From<usize>` give an `Int` whenever the
    /// value fits, so this variant is seen only above `i64::MAX`; one built by hand that fits
    /// is stored (and read back) as an `Int`.
    ///
    /// ```
    /// use cache_registry::AttrValue;
    ///
    /// assert_eq!(AttrValue::from(7u64), AttrValue::Int(7));
    /// assert_eq!(AttrValue::from(u64::MAX), AttrValue::Unsigned(u64::MAX));
    /// ```
    Unsigned(u64),
    /// A finite 64-bit float (NaN and infinities are refused when stored).
    Float(f64),
    /// UTF-8 text.
    Text(String),
    /// A point in time, stored to the microsecond (finer parts are dropped).
    DateTime(SystemTime),
    /// A boolean.
    Bool(bool),
    /// A namespace of further attributes.
    Map(Attributes),
}

impl AttrValue {
    /// The integer, if this is an [`Int`](AttrValue::Int) (or an
    /// [`Unsigned`](AttrValue::Unsigned) that fits in one).
    ///
    /// ```
    /// use cache_registry::AttrValue;
    ///
    /// assert_eq!(AttrValue::from(7).as_int(), Some(7));
    /// assert_eq!(AttrValue::from("7").as_int(), None);
    /// ```
    pub fn as_int(&self) -> Option<i64> {
        match self {
            AttrValue::Int(value) => Some(*value),
            AttrValue::Unsigned(value) => i64::try_from(*value).ok(),
            _ => None,
        }
    }

    /// The number as a float, if this is an [`Int`](AttrValue::Int), an
    /// [`Unsigned`](AttrValue::Unsigned) or a [`Float`](AttrValue::Float).
    ///
    /// ```
    /// use cache_registry::AttrValue;
    ///
    /// assert_eq!(AttrValue::from(2).as_float(), Some(2.0));
    /// assert_eq!(AttrValue::from(0.25).as_float(), Some(0.25));
    /// ```
    #[allow(clippy::cast_precision_loss, reason = "an int read as a float is asked for explicitly")]
    pub fn as_float(&self) -> Option<f64> {
        match self {
            AttrValue::Int(value) => Some(*value as f64),
            AttrValue::Unsigned(value) => Some(*value as f64),
            AttrValue::Float(value) => Some(*value),
            _ => None,
        }
    }

    /// The text, if this is [`Text`](AttrValue::Text).
    ///
    /// ```
    /// use cache_registry::AttrValue;
    ///
    /// assert_eq!(AttrValue::from("eu").as_text(), Some("eu"));
    /// ```
    pub fn as_text(&self) -> Option<&str> {
        match self {
            AttrValue::Text(value) => Some(value),
            _ => None,
        }
    }

    /// The time, if this is a [`DateTime`](AttrValue::DateTime).
    ///
    /// ```
    /// use std::time::SystemTime;
    /// use cache_registry::AttrValue;
    ///
    /// assert_eq!(AttrValue::from(SystemTime::UNIX_EPOCH).as_datetime(), Some(SystemTime::UNIX_EPOCH));
    /// ```
    pub fn as_datetime(&self) -> Option<SystemTime> {
        match self {
            AttrValue::DateTime(value) => Some(*value),
            _ => None,
        }
    }

    /// The boolean, if this is a [`Bool`](AttrValue::Bool).
    ///
    /// ```
    /// use cache_registry::AttrValue;
    ///
    /// assert_eq!(AttrValue::from(true).as_bool(), Some(true));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            AttrValue::Bool(value) => Some(*value),
            _ => None,
        }
    }

    /// The namespace, if this is a [`Map`](AttrValue::Map).
    ///
    /// ```
    /// use cache_registry::{AttrValue, Attributes};
    ///
    /// let model = AttrValue::from(Attributes::new().with("layers", 3));
    /// assert_eq!(model.as_map().map(Attributes::len), Some(1));
    /// ```
    pub fn as_map(&self) -> Option<&Attributes> {
        match self {
            AttrValue::Map(value) => Some(value),
            _ => None,
        }
    }

    /// The stored kind and SQL value of a leaf; `None` for a map.
    pub(crate) fn to_sql(&self, operation: &'static str) -> Result<Option<(Kind, SqlValue)>> {
        Ok(Some(match self {
            AttrValue::Int(value) => (Kind::Int, SqlValue::Integer(*value)),
            AttrValue::Unsigned(value) => match i64::try_from(*value) {
                Ok(value) => (Kind::Int, SqlValue::Integer(value)),
                Err(_) => {
                    return Err(Error::invalid_input(
                        operation,
                        format!("{value} is over i64::MAX, the largest attribute integer: store it as text or a float"),
                    ));
                }
            },
            AttrValue::Float(value) if value.is_finite() => (Kind::Float, SqlValue::Real(*value)),
            AttrValue::Float(_) => return Err(Error::invalid_input(operation, "attribute floats must be finite")),
            AttrValue::Text(value) => (Kind::Text, SqlValue::Text(value.clone())),
            AttrValue::DateTime(value) => (Kind::DateTime, SqlValue::Integer(micros(*value))),
            AttrValue::Bool(value) => (Kind::Bool, SqlValue::Integer(i64::from(*value))),
            AttrValue::Map(_) => return Ok(None),
        }))
    }

    pub(crate) fn from_sql(kind: i64, value: SqlValue) -> Option<AttrValue> {
        Some(match (Kind::from_code(kind)?, value) {
            (Kind::Int, SqlValue::Integer(value)) => AttrValue::Int(value),
            (Kind::Float, SqlValue::Real(value)) => AttrValue::Float(value),
            #[allow(clippy::cast_precision_loss, reason = "SQLite may store an integral REAL as an integer")]
            (Kind::Float, SqlValue::Integer(value)) => AttrValue::Float(value as f64),
            (Kind::Text, SqlValue::Text(value)) => AttrValue::Text(value),
            (Kind::DateTime, SqlValue::Integer(value)) => AttrValue::DateTime(from_micros(value)),
            (Kind::Bool, SqlValue::Integer(value)) => AttrValue::Bool(value != 0),
            _ => return None,
        })
    }
}

/// `u64` and `usize` (`.attr("size", body.len())`): an [`AttrValue::Int`] when the value fits
/// in `i64`, else an [`AttrValue::Unsigned`] that storing refuses.
impl From<u64> for AttrValue {
    fn from(value: u64) -> Self {
        i64::try_from(value).map_or(AttrValue::Unsigned(value), AttrValue::Int)
    }
}

/// As `From<u64>`.
impl From<usize> for AttrValue {
    fn from(value: usize) -> Self {
        // usize is at most 64 bits on every platform Rust supports.
        u64::try_from(value).map_or(AttrValue::Unsigned(u64::MAX), AttrValue::from)
    }
}

macro_rules! from_value {
    ($($source:ty => $variant:ident via $convert:expr),* $(,)?) => {$(
        impl From<$source> for AttrValue {
            fn from(value: $source) -> Self {
                AttrValue::$variant($convert(value))
            }
        }
    )*};
}

from_value! {
    i64 => Int via std::convert::identity,
    i32 => Int via i64::from,
    u32 => Int via i64::from,
    i16 => Int via i64::from,
    u16 => Int via i64::from,
    i8 => Int via i64::from,
    u8 => Int via i64::from,
    f64 => Float via std::convert::identity,
    f32 => Float via f64::from,
    String => Text via std::convert::identity,
    &str => Text via str::to_owned,
    &String => Text via String::clone,
    SystemTime => DateTime via std::convert::identity,
    bool => Bool via std::convert::identity,
    Attributes => Map via std::convert::identity,
}

/// The stored kind of a leaf attribute; its code is the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int = 0,
    Float = 1,
    Text = 2,
    DateTime = 3,
    Bool = 4,
}

impl Kind {
    pub(crate) fn code(self) -> i64 {
        self as i64
    }

    fn from_code(code: i64) -> Option<Kind> {
        Some(match code {
            0 => Kind::Int,
            1 => Kind::Float,
            2 => Kind::Text,
            3 => Kind::DateTime,
            4 => Kind::Bool,
            _ => return None,
        })
    }
}

/// A set of named attributes, nested through [`AttrValue::Map`] namespaces.
///
/// Names may hold any characters except `.`, which joins a namespace and a name into a path
/// (`model.layers`), the form [`get`](Attributes::get) and searches take.
///
/// ```
/// use cache_registry::{AttrValue, Attributes};
///
/// let attrs = Attributes::new()
///     .with("rows", 1200)
///     .with("source", "survey")
///     .with("model", Attributes::new().with("layers", 3));
/// assert_eq!(attrs.get("model.layers"), Some(&AttrValue::Int(3)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    entries: BTreeMap<String, AttrValue>,
}

impl Attributes {
    /// An empty set.
    ///
    /// ```
    /// use cache_registry::Attributes;
    ///
    /// assert!(Attributes::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Attributes::default()
    }

    /// This set with `name` set to `value`.
    ///
    /// ```
    /// use cache_registry::{AttrValue, Attributes};
    ///
    /// let attrs = Attributes::new().with("rows", 3).with("rows", 4);
    /// assert_eq!(attrs.get("rows"), Some(&AttrValue::Int(4)));
    /// ```
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<AttrValue>) -> Self {
        self.insert(name, value);
        self
    }

    /// Sets `name` to `value`, returning the value it had.
    ///
    /// ```
    /// use cache_registry::{AttrValue, Attributes};
    ///
    /// let mut attrs = Attributes::new();
    /// assert_eq!(attrs.insert("rows", 3), None);
    /// assert_eq!(attrs.insert("rows", 4), Some(AttrValue::Int(3)));
    /// ```
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<AttrValue>) -> Option<AttrValue> {
        self.entries.insert(name.into(), value.into())
    }

    /// The value at a dotted `path` (`"rows"`, `"model.layers"`), if there is one.
    ///
    /// ```
    /// use cache_registry::{AttrValue, Attributes};
    ///
    /// let attrs = Attributes::new().with("model", Attributes::new().with("layers", 3));
    /// assert_eq!(attrs.get("model.layers"), Some(&AttrValue::Int(3)));
    /// assert_eq!(attrs.get("model.depth"), None);
    /// ```
    pub fn get(&self, path: &str) -> Option<&AttrValue> {
        let mut current = self;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let value = current.entries.get(part)?;
            if parts.peek().is_none() {
                return Some(value);
            }
            current = value.as_map()?;
        }
        None
    }

    /// The top-level entries in name order.
    ///
    /// ```
    /// use cache_registry::Attributes;
    ///
    /// let attrs = Attributes::new().with("b", 2).with("a", 1);
    /// let names: Vec<&str> = attrs.iter().map(|(name, _)| name).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.entries.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// How many top-level entries there are.
    ///
    /// ```
    /// use cache_registry::Attributes;
    ///
    /// assert_eq!(Attributes::new().with("a", 1).with("ns", Attributes::new().with("b", 2)).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    ///
    /// ```
    /// use cache_registry::Attributes;
    ///
    /// assert!(!Attributes::new().with("a", 1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every leaf as `(dotted path, kind, value)`, after checking names and values.
    pub(crate) fn flatten(&self, operation: &'static str) -> Result<Vec<(String, Kind, SqlValue)>> {
        let mut out = Vec::new();
        self.flatten_into("", operation, &mut out)?;
        Ok(out)
    }

    fn flatten_into(
        &self,
        prefix: &str,
        operation: &'static str,
        out: &mut Vec<(String, Kind, SqlValue)>,
    ) -> Result<()> {
        for (name, value) in &self.entries {
            check_name(name, operation)?;
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
            let stored = value.to_sql(operation).map_err(|error| {
                Error::invalid_input(operation, format!("attribute {path:?}: {}", error.context().unwrap_or("invalid")))
            })?;
            match stored {
                Some((kind, sql)) => out.push((path, kind, sql)),
                None => {
                    if let AttrValue::Map(inner) = value {
                        inner.flatten_into(&path, operation, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Rebuilds the nesting from stored dotted paths.
    pub(crate) fn insert_path(&mut self, path: &str, value: AttrValue) {
        match path.split_once('.') {
            None => {
                self.entries.insert(path.to_owned(), value);
            }
            Some((head, rest)) => {
                let slot = self.entries.entry(head.to_owned()).or_insert_with(|| AttrValue::Map(Attributes::new()));
                if !matches!(slot, AttrValue::Map(_)) {
                    *slot = AttrValue::Map(Attributes::new());
                }
                if let AttrValue::Map(inner) = slot {
                    inner.insert_path(rest, value);
                }
            }
        }
    }
}

impl<N: Into<String>, V: Into<AttrValue>> FromIterator<(N, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut attrs = Attributes::new();
        for (name, value) in iter {
            attrs.insert(name, value);
        }
        attrs
    }
}

fn check_name(name: &str, operation: &'static str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_input(operation, "attribute names must not be empty"));
    }
    if name.contains('.') {
        return Err(Error::invalid_input(
            operation,
            format!("attribute name {name:?} contains '.', the namespace separator"),
        ));
    }
    Ok(())
}

/// Checks a dotted search path: non-empty parts.
pub(crate) fn check_path(path: &str, operation: &'static str) -> Result<()> {
    if path.split('.').any(str::is_empty) {
        return Err(Error::invalid_input(operation, format!("attribute path {path:?} has an empty part")));
    }
    Ok(())
}

/// Microseconds since the Unix epoch, negative before it, saturating far outside.
pub(crate) fn micros(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |micros| -micros),
    }
}

pub(crate) fn from_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    let time = if micros >= 0 { UNIX_EPOCH.checked_add(magnitude) } else { UNIX_EPOCH.checked_sub(magnitude) };
    time.unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_flatten_to_dotted_paths_and_back() {
        let attrs = Attributes::new().with("a", 1).with("ns", Attributes::new().with("b", "x").with("c", true));
        let flat = attrs.flatten("test").unwrap();
        let paths: Vec<&str> = flat.iter().map(|(path, _, _)| path.as_str()).collect();
        assert_eq!(paths, ["a", "ns.b", "ns.c"]);
        let mut rebuilt = Attributes::new();
        for (path, kind, value) in flat {
            rebuilt.insert_path(&path, AttrValue::from_sql(kind.code(), value).unwrap());
        }
        assert_eq!(rebuilt, attrs);
    }

    #[test]
    fn dots_in_names_and_non_finite_floats_are_refused() {
        let dotted = Attributes::new().with("a.b", 1).flatten("test").unwrap_err();
        assert_eq!(dotted.kind(), crate::ErrorKind::InvalidInput);
        let nan = Attributes::new().with("a", f64::NAN).flatten("test").unwrap_err();
        assert_eq!(nan.kind(), crate::ErrorKind::InvalidInput);
        let empty = Attributes::new().with("", 1).flatten("test").unwrap_err();
        assert_eq!(empty.kind(), crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn unsigned_integers_are_ints_when_they_fit_and_refused_above_i64_max() {
        let len: usize = 1200;
        assert_eq!(AttrValue::from(len), AttrValue::Int(1200));
        assert_eq!(AttrValue::from(u64::try_from(i64::MAX).unwrap()), AttrValue::Int(i64::MAX));
        assert_eq!(AttrValue::from(3u32), AttrValue::Int(3));
        assert_eq!(AttrValue::from(0.5f32), AttrValue::Float(0.5));
        let error = Attributes::new().with("size", u64::MAX).flatten("create").unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::InvalidInput);
        let message = error.to_string();
        assert!(message.contains("\"size\"") && message.contains("i64::MAX"), "{message}");
        let fits = Attributes::new().with("n", AttrValue::Unsigned(5)).flatten("create").unwrap();
        assert_eq!(fits[0].2, SqlValue::Integer(5));
    }

    #[test]
    fn times_round_trip_to_the_microsecond_on_both_sides_of_the_epoch() {
        for micros_value in [0, 1, -1, 1_700_000_000_123_456, -86_400_000_000] {
            assert_eq!(micros(from_micros(micros_value)), micros_value);
        }
        let time = UNIX_EPOCH + Duration::new(5, 1_999);
        assert_eq!(from_micros(micros(time)), UNIX_EPOCH + Duration::new(5, 1_000));
    }
}
