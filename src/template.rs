//! Templates in query files (`{{ messages.id }}`, `gsc_{{ today }}.csv`), rendered with
//! minijinja. A string is a template when it holds `{{` or `{%`; anything else is used as
//! written.
//!
//! What a template may read:
//! - the query's variables: its `[vars]` table, overridden by `--var key=value`;
//! - `env.NAME`, an environment variable (one that is not set is an error);
//! - dates: `today`, `yesterday`, `first_day_of_this_month`, `last_day_of_this_month`,
//!   `first_day_of_last_month`, `last_day_of_last_month` (all `YYYY-MM-DD`), `days_ago(n)`,
//!   and the filter `date("%d/%m/%Y")` to format any of them (chrono's strftime patterns);
//! - in a fan-out, the parent's record under the parent query's name.
//!
//! "Today" is the local date, or `GSCRAPE_TODAY` (`YYYY-MM-DD`) when set, so that scheduled
//! runs can be replayed and tests pinned. Unknown variables are reported before a run.
//!
//! A `where` filter ([`RecordFilter`]) is an expression over one record, which reads its
//! values typed by the record schema ([`typed_value`]), not as Google's JSON spells them.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Datelike, Days, Months, NaiveDate};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

use crate::discovery::schema;
use crate::discovery::{Document, Schema};
use crate::records::schema::ColumnType;

/// The names every template may read besides the query's own variables.
pub const BUILTINS: &[&str] = &[
    "env",
    "today",
    "yesterday",
    "first_day_of_this_month",
    "last_day_of_this_month",
    "first_day_of_last_month",
    "last_day_of_last_month",
    "days_ago",
    // A backfill's window (`window.start`, `window.end`); `run` refuses it outside one.
    "window",
];

const DATE_FORMAT: &str = "%Y-%m-%d";

/// The environment variables that hold gscrape's own credentials.
const SECRET_VARIABLES: &[&str] = &["GSCRAPE_ACCESS_TOKEN", "GSCRAPE_API_KEY"];

/// True when `text` must be rendered.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The template engine with gscrape's globals.
pub struct Templates {
    env: Environment<'static>,
    /// The same engine holding each template rendered so far, compiled (named by its
    /// source): a fan-out renders the same few templates for every parent record.
    compiled: std::sync::RwLock<Environment<'static>>,
}

#[derive(Debug, thiserror::Error)]
#[error("GSCRAPE_TODAY={0:?} is not a date: write it as YYYY-MM-DD")]
pub struct BadToday(String);

impl Templates {
    /// The engine, with "today" from `GSCRAPE_TODAY` or the local clock.
    pub fn new() -> Result<Self, BadToday> {
        let today = match std::env::var("GSCRAPE_TODAY") {
            Ok(text) => {
                NaiveDate::parse_from_str(text.trim(), DATE_FORMAT).map_err(|_| BadToday(text))?
            }
            Err(_) => chrono::Local::now().date_naive(),
        };
        Ok(Self::for_date(today))
    }

    /// The engine with a fixed "today".
    pub fn for_date(today: NaiveDate) -> Self {
        let mut env = Environment::new();
        // A field missing from a record renders empty (records are sparse); unknown variables
        // are caught by `check` before anything runs.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        // Booleans render as JSON and TOML write them (`false`), not as Python's `False`:
        // a `[vars]` boolean goes into a request as the API reads it.
        env.set_formatter(|out, state, value| {
            if value.kind() == minijinja::value::ValueKind::Bool {
                let text = if value.is_true() { "true" } else { "false" };
                return out
                    .write_str(text)
                    .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()));
            }
            minijinja::escape_formatter(out, state, value)
        });
        let day = |d: NaiveDate| Value::from(d.format(DATE_FORMAT).to_string());
        let first_this = today.with_day(1).unwrap_or(today);
        let first_next = first_this
            .checked_add_months(Months::new(1))
            .unwrap_or(first_this);
        let first_last = first_this
            .checked_sub_months(Months::new(1))
            .unwrap_or(first_this);
        let pred = |d: NaiveDate| d.pred_opt().unwrap_or(d);
        env.add_global("today", day(today));
        env.add_global("yesterday", day(pred(today)));
        env.add_global("first_day_of_this_month", day(first_this));
        env.add_global("last_day_of_this_month", day(pred(first_next)));
        env.add_global("first_day_of_last_month", day(first_last));
        env.add_global("last_day_of_last_month", day(pred(first_this)));
        let variables: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        env.add_global("env", Value::from(variables));
        env.add_function("days_ago", move |n: i64| -> Result<Value, Error> {
            let date = if n >= 0 {
                today.checked_sub_days(Days::new(n as u64))
            } else {
                today.checked_add_days(Days::new(n.unsigned_abs()))
            };
            date.map(day)
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "date out of range"))
        });
        env.add_filter(
            "date",
            |value: String, pattern: String| -> Result<String, Error> {
                let date = NaiveDate::parse_from_str(&value, DATE_FORMAT).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidOperation,
                        format!("{value:?} is not a YYYY-MM-DD date"),
                    )
                })?;
                let items: Vec<chrono::format::Item> =
                    chrono::format::StrftimeItems::new(&pattern).collect();
                if items
                    .iter()
                    .any(|i| matches!(i, chrono::format::Item::Error))
                {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("{pattern:?} is not a date pattern (use %Y, %m, %d, ...)"),
                    ));
                }
                Ok(date.format_with_items(items.into_iter()).to_string())
            },
        );
        Templates {
            compiled: std::sync::RwLock::new(env.clone()),
            env,
        }
    }

    /// Checks the syntax of `source`, that every variable it reads is a builtin or one of
    /// `known`, and that every `env.NAME` it reads is set.
    pub fn check(&self, source: &str, known: &[&str]) -> Result<(), String> {
        let template = self.env.template_from_str(source).map_err(|e| {
            format!(
                "invalid template {source:?}: {}",
                e.detail()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e.to_string())
            )
        })?;
        let used: BTreeSet<String> = template.undeclared_variables(true).into_iter().collect();
        let mut unknown = Vec::new();
        for name in &used {
            let root = name.split('.').next().unwrap_or(name);
            if root == "env" {
                if let Some(var) = name.strip_prefix("env.") {
                    if SECRET_VARIABLES.contains(&var) {
                        return Err(format!(
                            "{source:?} reads {var}, a credential; templates cannot read gscrape's secrets"
                        ));
                    }
                    if std::env::var_os(var).is_none() {
                        return Err(format!(
                            "{source:?} reads the environment variable {var}, which is not set"
                        ));
                    }
                }
                continue;
            }
            if !BUILTINS.contains(&root) && !known.contains(&root) && !unknown.contains(&root) {
                unknown.push(root);
            }
        }
        if unknown.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = unknown.iter().map(|n| format!("`{n}`")).collect();
        let known = if known.is_empty() {
            "no variables of its own (add a [vars] table or --var)".to_owned()
        } else {
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(format!(
            "{source:?} uses the undefined variable {}; this query has {known}",
            names.join(", ")
        ))
    }

    /// The fields of the variable `root` that `source` reads, as dotted paths
    /// (`{{ users.name.fullName }}` → `name.fullName`); an empty path when it reads `root`
    /// whole. A template that does not parse reads nothing (`check` reports it).
    pub fn reads(&self, source: &str, root: &str) -> Vec<String> {
        let Ok(template) = self.env.template_from_str(source) else {
            return Vec::new();
        };
        let mut paths: Vec<String> = template
            .undeclared_variables(true)
            .into_iter()
            .filter_map(|name| match name.strip_prefix(root) {
                Some("") => Some(String::new()),
                Some(rest) => rest.strip_prefix('.').map(str::to_owned),
                None => None,
            })
            .collect();
        paths.sort();
        paths
    }

    /// The variables `source` reads, by their root name (`users` of `users.name`); none for
    /// a template that does not parse.
    pub fn variables(&self, source: &str) -> BTreeSet<String> {
        let Ok(template) = self.env.template_from_str(source) else {
            return BTreeSet::new();
        };
        template
            .undeclared_variables(false)
            .into_iter()
            .filter(|name| !BUILTINS.contains(&name.as_str()))
            .collect()
    }

    /// The names a `where` expression reads (`mimeType`, `owners`), or what is wrong with it.
    pub fn expression_reads(&self, source: &str) -> Result<Vec<String>, String> {
        let expression = self.env.compile_expression(source).map_err(|e| {
            format!(
                "invalid expression {source:?}: {}",
                e.detail().unwrap_or("")
            )
        })?;
        let mut names: Vec<String> = expression.undeclared_variables(true).into_iter().collect();
        names.sort();
        Ok(names)
    }

    /// Renders `source` (or returns it as is when it is not a template).
    pub fn render(&self, source: &str, context: &Value) -> Result<String, String> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        if let Some(text) = plain_lookup(source, context) {
            return Ok(text);
        }
        let compiled = || -> Option<Result<String, Error>> {
            Some(
                self.read_compiled()
                    .get_template(source)
                    .ok()?
                    .render(context),
            )
        };
        let rendered = compiled().or_else(|| {
            let added = self
                .compiled
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .add_template_owned(source.to_owned(), source.to_owned());
            added.ok().and_then(|()| compiled())
        });
        match rendered {
            Some(Ok(text)) => Ok(text),
            // A failure is said as `render_str` says it (of a template named `<string>`, not
            // of one named by its source).
            _ => self
                .env
                .render_str(source, context)
                .map_err(|e| format!("cannot render {source:?}: {e}")),
        }
    }

    fn read_compiled(&self) -> std::sync::RwLockReadGuard<'_, Environment<'static>> {
        self.compiled
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The text of a template that only names a string variable (`{{ users.primaryEmail }}`),
/// read from `context` without the engine: a fan-out renders one for every parent record.
/// Anything else (a filter, a global, a value that is not a string) is left to the engine,
/// so the result is always what it would give.
fn plain_lookup(source: &str, context: &Value) -> Option<String> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let is_name = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            // Literals, not variables.
            && !matches!(part, "true" | "false" | "none" | "True" | "False" | "None")
    };
    let mut value: Option<Value> = None;
    for part in inner.split('.') {
        if !is_name(part) {
            return None;
        }
        let next = value.as_ref().unwrap_or(context).get_attr(part).ok()?;
        if next.is_undefined() {
            return None;
        }
        value = Some(next);
    }
    value?.as_str().map(str::to_owned)
}

/// A JSON value as a template reads it. serde_json keeps each number's text (its
/// `arbitrary_precision` feature, so that a 30-digit integer is exported as sent), and such a
/// number serializes as a private map to any serializer but serde_json's own: numbers are
/// converted here instead, an integer as an integer (up to 128 bits), anything else as a float.
pub fn json_value(value: &serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match value {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            number(n.as_str()).unwrap_or_else(|_| Value::from(n.as_f64().unwrap_or(f64::NAN)))
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::from(items.iter().map(json_value).collect::<Vec<_>>()),
        Json::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), json_value(v)))
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}

/// A compiled `where` expression: true for the records to keep. Compiled once per query, in an
/// environment of its own that lives as long as the process (an expression borrows its
/// environment, and an export's filter is used until the run ends). It sees the record's
/// fields typed by the record schema ([`typed_value`]); only the top-level fields it names are
/// converted, once per record.
pub struct RecordFilter {
    source: String,
    expression: minijinja::Expression<'static, 'static>,
    doc: Option<Arc<Document>>,
    /// The top-level fields the expression reads, each with its schema where the record
    /// schema has it.
    reads: Vec<(Arc<str>, Option<Schema>)>,
}

impl RecordFilter {
    /// The filter `source`, its fields typed by `record` (a document and its record schema;
    /// `None` where gscrape makes the records, as for reports: values as sent).
    pub fn new(source: &str, record: Option<(Arc<Document>, Schema)>) -> Result<Self, String> {
        let env: &'static Environment<'static> = Box::leak(Box::new(filter_environment()));
        let expression = env
            .compile_expression_owned(source.to_owned())
            .map_err(|e| format!("invalid expression {source:?}: {e}"))?;
        let (doc, record) = record.unzip();
        let mut names: Vec<String> = expression.undeclared_variables(false).into_iter().collect();
        names.sort();
        let reads = names
            .into_iter()
            .map(|name| {
                let field = match (&doc, &record) {
                    (Some(doc), Some(record)) => {
                        schema::resolve(doc, record).properties.get(&name).cloned()
                    }
                    _ => None,
                };
                (Arc::from(name), field)
            })
            .collect();
        Ok(RecordFilter {
            source: source.to_owned(),
            expression,
            doc,
            reads,
        })
    }

    /// Whether `record` is kept; an expression that cannot be evaluated, or a value it
    /// cannot compare exactly, is an error.
    pub fn keeps(&self, record: &serde_json::Value) -> Result<bool, String> {
        let mut context = std::collections::BTreeMap::new();
        for (name, field) in &self.reads {
            let Some(value) = record.get(&**name) else {
                continue;
            };
            let typing = self.doc.as_deref().zip(field.as_ref());
            let typed = typed_value(typing, value).map_err(|inexact| {
                let inexact = inexact.inside(name.to_string());
                format!("`where = {:?}`: {inexact}", self.source)
            })?;
            context.insert(name.clone(), typed);
        }
        self.expression
            .eval(Value::from(context))
            .map(|value| value.is_true())
            .map_err(|e| format!("`where = {:?}`: {e}", self.source))
    }
}

/// The environment of `where` expressions: minijinja's own, without gscrape's globals (a
/// filter reads its record).
fn filter_environment() -> Environment<'static> {
    Environment::new()
}

/// True for a name a `where` expression reads that is one of its environment's globals
/// (`range`, `dict`, ...), not a field of the record (unless the record has one so named).
pub fn is_filter_global(name: &str) -> bool {
    static GLOBALS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        let env = filter_environment();
        env.globals().map(|(name, _)| name.to_owned()).collect()
    });
    GLOBALS.iter().any(|global| global == name)
}

/// A number a `where` cannot compare exactly, and where in the record it is.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{}` is {}, {}",
    self.field(),
    crate::redact::shorten(number, 60),
    match integer {
        true => "an integer longer than 128 bits, which a `where` cannot compare exactly",
        false => "past the range of a double, which a `where` cannot compare",
    }
)]
pub struct Inexact {
    /// The keys to it (`[i]` for an array's element), innermost first.
    path: Vec<String>,
    number: String,
    integer: bool,
}

impl Inexact {
    /// The dotted name of the field.
    fn field(&self) -> String {
        let mut field = String::new();
        for key in self.path.iter().rev() {
            if !field.is_empty() && !key.starts_with('[') {
                field.push('.');
            }
            field.push_str(key);
        }
        field
    }

    fn inside(mut self, key: String) -> Inexact {
        self.path.push(key);
        self
    }
}

/// A record's value as a `where` reads it, typed by its schema in its document (`None`:
/// untyped, as sent): integers (and `int64` strings) as integers, exact up to 128 bits; other
/// numbers (and number strings) as doubles; boolean strings as booleans; `date-time` and
/// `google-datetime` strings as one UTC text, `2024-03-01T09:00:00.5+00:00` (the fraction
/// without trailing zeros), so that they compare as the instants they are — `+` sorts below
/// `.` and every digit, so a whole second comes before its fractions. Text that does not parse
/// as its type stays text; a number that cannot be held exactly is an error, not a guess.
pub fn typed_value(
    schema: Option<(&Document, &Schema)>,
    value: &serde_json::Value,
) -> Result<Value, Inexact> {
    use serde_json::Value as Json;
    // An exploded array's element takes the array's item schema.
    let element = schema.map(|(doc, s)| schema::resolve(doc, schema::element_schema(doc, s)));
    Ok(match value {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => number(n.as_str())?,
        Json::String(text) => match element.map(ColumnType::of) {
            Some(ColumnType::Integer | ColumnType::Unsigned) if is_integer(text) => number(text)?,
            Some(ColumnType::Number) if is_json_number(text) => number(text)?,
            Some(ColumnType::Boolean) if text == "true" || text == "false" => {
                Value::from(text == "true")
            }
            Some(ColumnType::DateTime) => match chrono::DateTime::parse_from_rfc3339(text) {
                Ok(at) => Value::from(instant(at.naive_utc())),
                Err(_) => Value::from(text.as_str()),
            },
            _ => Value::from(text.as_str()),
        },
        Json::Array(items) => {
            let items_schema = schema.map(|(doc, s)| (doc, schema::element_schema(doc, s)));
            let typed = items.iter().enumerate().map(|(i, item)| {
                typed_value(items_schema, item).map_err(|e| e.inside(format!("[{i}]")))
            });
            Value::from(typed.collect::<Result<Vec<_>, _>>()?)
        }
        Json::Object(map) => {
            let field = |key: &str| {
                let (doc, element) = schema.map(|(doc, _)| doc).zip(element)?;
                let field = element
                    .properties
                    .get(key)
                    .or(element.additional_properties.as_deref())?;
                Some((doc, field))
            };
            let typed = map.iter().map(|(key, value)| {
                typed_value(field(key), value)
                    .map(|v| (key.clone(), v))
                    .map_err(|e| e.inside(key.clone()))
            });
            Value::from(typed.collect::<Result<std::collections::BTreeMap<_, _>, _>>()?)
        }
    })
}

/// `-?[0-9]+`: an integer as Google writes one (no sign but `-`, no spaces).
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A JSON number, whole (`1.5`, `-2e3`; not ` 1`, `NaN` or `Infinity`).
fn is_json_number(text: &str) -> bool {
    !text.bytes().any(|b| b.is_ascii_whitespace())
        && serde_json::from_str::<serde_json::Number>(text).is_ok()
}

/// The number a JSON number's `text` is: an integer exactly (up to 128 bits), else a double.
fn number(text: &str) -> Result<Value, Inexact> {
    let inexact = |integer| Inexact {
        path: Vec::new(),
        number: text.to_owned(),
        integer,
    };
    if is_integer(text) {
        return if let Ok(i) = text.parse::<i64>() {
            Ok(Value::from(i))
        } else if let Ok(i) = text.parse::<i128>() {
            Ok(Value::from(i))
        } else if let Ok(u) = text.parse::<u128>() {
            Ok(Value::from(u))
        } else {
            Err(inexact(true))
        };
    }
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(Value::from(n)),
        _ => Err(inexact(false)),
    }
}

/// A UTC instant as one text that sorts as the instants do.
fn instant(at: chrono::NaiveDateTime) -> String {
    use chrono::Timelike;
    let mut text = at.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = at.nanosecond() % 1_000_000_000;
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str("+00:00");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned() -> Templates {
        Templates::for_date(NaiveDate::from_ymd_opt(2024, 3, 1).unwrap())
    }

    #[test]
    fn a_template_compiled_once_renders_each_context_and_fails_as_render_str_says() {
        let t = pinned();
        let ctx = |id: &str| Value::from(minijinja::value::Serde(serde_json::json!({"id": id})));
        for id in ["a", "b", "a"] {
            assert_eq!(
                t.render("{{ id }}-{{ today }}", &ctx(id)).unwrap(),
                format!("{id}-2024-03-01")
            );
        }
        let failing = "{{ id | date('%Y') }}";
        let said = t.render(failing, &ctx("x")).unwrap_err();
        let direct = t.env.render_str(failing, ctx("x")).unwrap_err();
        assert_eq!(said, format!("cannot render {failing:?}: {direct}"));
        assert_eq!(
            t.render(failing, &ctx("x")).unwrap_err(),
            said,
            "and again, compiled"
        );
    }

    #[test]
    fn renders_fields_of_the_context() {
        let t = pinned();
        let ctx = Value::from(minijinja::value::Serde(
            serde_json::json!({"messages": {"id": "m1"}}),
        ));
        assert_eq!(t.render("id-{{ messages.id }}", &ctx).unwrap(), "id-m1");
        assert_eq!(t.render("{{ messages.missing.deeper }}", &ctx).unwrap(), "");
        assert_eq!(t.render("plain", &ctx).unwrap(), "plain");
    }

    #[test]
    fn a_plain_variable_renders_as_the_engine_renders_it() {
        let t = pinned();
        let ctx = Value::from(minijinja::value::Serde(serde_json::json!({
            "ids": {"id": "m1", "n": 7, "nested": {"k": "<v & w>"}, "none": "shadow"},
            "none": "a variable named none",
            "today": "shadows the global",
        })));
        for source in [
            "{{ ids.id }}",
            "{{ids.id}}",
            "{{  ids.nested.k  }}",
            "{{ ids.n }}",
            "{{ ids.nested }}",
            "{{ ids.missing }}",
            "{{ ids.none }}",
            "{{ none }}",
            "{{ today }}",
            "{{ yesterday }}",
            "{{- ids.id -}}",
            "{{ ids.id | upper }}",
        ] {
            let engine = t.env.render_str(source, ctx.clone()).unwrap();
            assert_eq!(t.render(source, &ctx).unwrap(), engine, "{source}");
        }
        // Only a string variable takes the short way.
        assert_eq!(
            plain_lookup("{{ ids.nested.k }}", &ctx).as_deref(),
            Some("<v & w>")
        );
        assert_eq!(plain_lookup("{{ ids.n }}", &ctx), None);
        assert_eq!(plain_lookup("{{ none }}", &ctx), None);
        assert_eq!(plain_lookup("{{ yesterday }}", &ctx), None);
    }

    #[test]
    fn fields_read_of_a_variable() {
        let t = pinned();
        assert_eq!(
            t.reads(
                "{{ users.name.fullName }}-{{ users.id }}-{{ other.x }}",
                "users"
            ),
            ["id", "name.fullName"]
        );
        assert_eq!(t.reads("{{ users | tojson }}", "users"), [""]);
        assert!(t.reads("{{ today }}", "users").is_empty());
    }

    #[test]
    fn date_helpers() {
        let t = pinned();
        let ctx = Value::from(());
        let r = |s: &str| t.render(s, &ctx).unwrap();
        assert_eq!(r("{{ today }}"), "2024-03-01");
        assert_eq!(r("{{ yesterday }}"), "2024-02-29");
        assert_eq!(r("{{ days_ago(30) }}"), "2024-01-31");
        assert_eq!(
            r("{{ first_day_of_this_month }}/{{ last_day_of_this_month }}"),
            "2024-03-01/2024-03-31"
        );
        assert_eq!(
            r("{{ first_day_of_last_month }}/{{ last_day_of_last_month }}"),
            "2024-02-01/2024-02-29"
        );
        assert_eq!(r("{{ today | date('%Y%m%d') }}"), "20240301");
        assert_eq!(r("{{ days_ago(1) | date('%d/%m/%Y') }}"), "29/02/2024");
    }

    #[test]
    fn environment_variables_are_read() {
        let t = pinned();
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(t.render("{{ env.PATH }}", &Value::from(())).unwrap(), path);
    }

    fn typing_doc() -> Document {
        Document::from_json(
            r#"{"name": "t", "version": "v1", "rootUrl": "http://x/", "schemas": {
              "Item": {"type": "object", "properties": {
                "size": {"type": "string", "format": "int64"},
                "ratio": {"type": "number", "format": "double"},
                "ok": {"type": "boolean"},
                "at": {"type": "string", "format": "google-datetime"},
                "day": {"type": "string", "format": "date"},
                "name": {"type": "string"},
                "sizes": {"type": "array", "items": {"type": "string", "format": "uint64"}},
                "parts": {"type": "array", "items": {"$ref": "Item"}},
                "counts": {"type": "object", "additionalProperties": {"type": "string", "format": "int64"}}
              }}}}"#,
        )
        .unwrap()
    }

    /// `where` over `record`, typed by the schema `Item`.
    fn keeps(source: &str, record: serde_json::Value) -> Result<bool, String> {
        let doc = Arc::new(typing_doc());
        let item = doc.schema("Item").unwrap().clone();
        RecordFilter::new(source, Some((doc, item)))?.keeps(&record)
    }

    #[test]
    fn a_filter_reads_values_typed_by_the_schema() {
        use serde_json::json;
        let big = json!({"size": "123456789012345678901234567890"});
        assert_eq!(
            keeps("size > 123456789012345678901234567889", big.clone()),
            Ok(true)
        );
        assert_eq!(
            keeps("size == 123456789012345678901234567890", big),
            Ok(true)
        );
        assert_eq!(keeps("size > 500", json!({"size": "60"})), Ok(false));
        assert_eq!(keeps("size < 0", json!({"size": "-7"})), Ok(true));
        assert_eq!(
            keeps("size is string", json!({"size": "+7"})),
            Ok(true),
            "not Google's form"
        );
        assert_eq!(keeps("ratio > 1.25", json!({"ratio": "1.5"})), Ok(true));
        assert_eq!(keeps("ratio is string", json!({"ratio": "NaN"})), Ok(true));
        assert_eq!(keeps("ok", json!({"ok": "false"})), Ok(false));
        assert_eq!(keeps("ok is string", json!({"ok": "yes"})), Ok(true));
        assert_eq!(
            keeps("name > 5", json!({"name": "0"})),
            Ok(true),
            "text stays text"
        );
        assert_eq!(
            keeps("day == '2024-03-01'", json!({"day": "2024-03-01"})),
            Ok(true)
        );
        let at = |text: &str| json!({"at": text});
        assert_eq!(
            keeps(
                "at == '2024-03-01T09:00:00.5+00:00'",
                at("2024-03-01T10:00:00.500000000+01:00")
            ),
            Ok(true)
        );
        assert_eq!(
            keeps(
                "at == '2024-03-01T09:00:00+00:00'",
                at("2024-03-01T09:00:00.000Z")
            ),
            Ok(true)
        );
        assert_eq!(keeps("at == 'soon'", at("soon")), Ok(true));
        // Nested values, arrays, maps and an exploded element are typed too.
        assert_eq!(
            keeps("sizes[1] > 10", json!({"sizes": ["1", "20"]})),
            Ok(true)
        );
        assert_eq!(
            keeps("parts[0].size > 10", json!({"parts": [{"size": "20"}]})),
            Ok(true)
        );
        assert_eq!(
            keeps("parts.size > 10", json!({"parts": {"size": "20"}})),
            Ok(true)
        );
        assert_eq!(
            keeps("counts.a > 10", json!({"counts": {"a": "20"}})),
            Ok(true)
        );
        assert_eq!(
            keeps("parts[0].size > 1", json!({"parts": [{"size": "1234567890123456789012345678901234567890"}]})),
            Err("`where = \"parts[0].size > 1\"`: `parts[0].size` is 1234567890123456789012345678901234567890, \
                 an integer longer than 128 bits, which a `where` cannot compare exactly".to_owned())
        );
        assert_eq!(
            keeps(
                "ratio > 1",
                serde_json::from_str(r#"{"ratio": 1e400}"#).unwrap()
            )
            .map_err(|e| e.contains("past the range of a double")),
            Err(true)
        );
        // Untyped (a report's records): numbers still exact, strings as sent.
        let untyped = RecordFilter::new("n > 1 and s == '5'", None).unwrap();
        assert_eq!(
            untyped.keeps(&json!({"n": 99999999999999999999999u128, "s": "5"})),
            Ok(true)
        );
    }

    #[test]
    fn instants_sort_as_their_text() {
        let texts = [
            "2023-12-31T23:59:59.999999999Z",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01T00:00:00.000000001Z",
            "2024-01-01T01:00:00.05+01:00",
            "2024-01-01T00:00:00.5Z",
            "2024-01-01T00:00:00.55Z",
            "2024-01-01T00:00:01Z",
        ];
        let instants: Vec<String> = texts
            .iter()
            .map(|t| instant(chrono::DateTime::parse_from_rfc3339(t).unwrap().naive_utc()))
            .collect();
        let mut sorted = instants.clone();
        sorted.sort();
        assert_eq!(sorted, instants);
        assert_eq!(instants[3], "2024-01-01T00:00:00.05+00:00");
    }

    #[test]
    fn unknown_variables_are_named() {
        let t = pinned();
        assert!(t
            .check("{{ messages.id }} {{ today }}", &["messages"])
            .is_ok());
        assert_eq!(
            t.check("{{ mesages.id }}", &["messages"]).unwrap_err(),
            "\"{{ mesages.id }}\" uses the undefined variable `mesages`; this query has `messages`"
        );
        assert!(t
            .check("{{ x", &[])
            .unwrap_err()
            .starts_with("invalid template"));
        assert_eq!(
            t.check("{{ env.GSCRAPE_SURELY_UNSET_VAR }}", &[]).unwrap_err(),
            "\"{{ env.GSCRAPE_SURELY_UNSET_VAR }}\" reads the environment variable GSCRAPE_SURELY_UNSET_VAR, which is not set"
        );
    }
}
