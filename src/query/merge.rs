//! `merge_key`, `merge_keep` and `lookback`, checked: which columns identify a row of the
//! output (a run's rows replace the old ones with their key), which of one run's rows with
//! one key wins, and how far before its cursor a run asks again. Whether they fit the query's
//! columns, format and kind (incremental, backfill) is checked once planned
//! (`app::preflight`).

use toml::Spanned;

use super::{Located, Problem, Source};

/// `merge_key` and `merge_keep`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// Column names (headers), in the order written; none repeated.
    pub key: Vec<String>,
    /// `None`: two rows of one run with one key fail the query.
    pub keep: Option<MergeKeep>,
}

/// `merge_keep`: which of one run's rows with one key is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKeep {
    First,
    Last,
}

/// `lookback`: a span of time (`"3d"`, for a time or date cursor and for a backfill's days),
/// or a number of the cursor's units (`lookback = 100`, for a numeric cursor).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lookback {
    Span(std::time::Duration),
    Units(u64),
}

impl std::fmt::Display for Lookback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookback::Span(span) => write!(f, "{}", humantime::format_duration(*span)),
            Lookback::Units(n) => write!(f, "{n}"),
        }
    }
}

impl Lookback {
    /// Whole days, rounded up (a backfill's windows and a date cursor step by days).
    pub fn days(&self) -> u64 {
        match self {
            Lookback::Span(span) => span.as_secs().div_ceil(86_400),
            Lookback::Units(n) => *n,
        }
    }

    /// `since` moved back by this lookback: an RFC 3339 time (in its own offset), a
    /// `YYYY-MM-DD` date (by whole days, rounded up) or a number (by units); why not otherwise.
    pub fn before(&self, since: &str) -> Result<String, String> {
        if let Ok(time) = chrono::DateTime::parse_from_rfc3339(since) {
            let Lookback::Span(span) = self else {
                return Err(format!(
                    "the cursor {since:?} is a time: give the lookback as one (\"3d\", \"12h\")"
                ));
            };
            let back = chrono::Duration::from_std(*span)
                .ok()
                .and_then(|span| time.checked_sub_signed(span))
                .ok_or_else(|| format!("{self} before {since:?} is not a time"))?;
            let utc = back.offset().local_minus_utc() == 0;
            return Ok(back.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, utc));
        }
        if let Ok(date) = since.parse::<chrono::NaiveDate>() {
            let back = date
                .checked_sub_days(chrono::Days::new(self.days()))
                .ok_or_else(|| format!("{self} before {since:?} is not a date"))?;
            return Ok(back.to_string());
        }
        if let Ok(number) = since.parse::<i128>() {
            let Lookback::Units(n) = self else {
                return Err(format!(
                    "the cursor {since:?} is a number: give the lookback as a number of its units \
                     (`lookback = 100`)"
                ));
            };
            return Ok((number - i128::from(*n)).to_string());
        }
        Err(format!(
            "the cursor {since:?} is neither an RFC 3339 time, a date nor an integer, so it \
             cannot be moved back"
        ))
    }
}

/// `merge_key = ["date", "country"]` and `merge_keep = "last"`.
pub(super) fn check_merge(
    key: Option<Spanned<Vec<String>>>,
    keep: Option<Spanned<String>>,
    src: &Source,
) -> Result<Option<Located<Merge>>, Vec<Problem>> {
    let keep_line = keep.as_ref().and_then(|k| src.at(k.span()));
    let keep = match keep.map(Spanned::into_inner).as_deref() {
        None => None,
        Some("first") => Some(MergeKeep::First),
        Some("last") => Some(MergeKeep::Last),
        Some(other) => {
            return Err(vec![src.problem(
                keep_line,
                "merge_keep",
                format!(
                    "{other:?} is not a choice: \"first\" or \"last\" (of one run's rows with one \
                     key); without it such rows fail the query"
                ),
            )])
        }
    };
    let Some(key) = key else {
        return match keep {
            Some(_) => Err(vec![src.problem(
                keep_line,
                "merge_keep",
                "says which row of a key wins, but there is no `merge_key`: add one, or remove it",
            )]),
            None => Ok(None),
        };
    };
    let line = src.at(key.span());
    let key = key.into_inner();
    if key.is_empty() {
        return Err(vec![src.problem(
            line,
            "merge_key",
            "names no column: list the columns that identify a row (`merge_key = [\"date\", \
             \"country\"]`)",
        )]);
    }
    if let Some(twice) = (1..key.len()).find(|&i| key[..i].contains(&key[i])) {
        return Err(vec![src.problem(
            line,
            "merge_key",
            format!("names `{}` twice", key[twice]),
        )]);
    }
    Ok(Some(Located {
        value: Merge { key, keep },
        line,
    }))
}

/// `lookback`, at the top level or under `[incremental]` (not both).
pub(super) fn check_lookback(
    top: Option<Spanned<toml::Value>>,
    inner: Option<Spanned<toml::Value>>,
    src: &Source,
) -> Result<Option<Located<Lookback>>, Vec<Problem>> {
    let (value, key) = match (top, inner) {
        (None, None) => return Ok(None),
        (Some(_), Some(inner)) => {
            return Err(vec![src.problem(
                src.at(inner.span()),
                "incremental.lookback",
                "`lookback` is set twice (at the top and under [incremental]): keep one",
            )])
        }
        (Some(top), None) => (top, "lookback"),
        (None, Some(inner)) => (inner, "incremental.lookback"),
    };
    let line = src.at(value.span());
    let parsed = match value.into_inner() {
        toml::Value::String(text) => humantime::parse_duration(&text)
            .map_err(|err| format!("{text:?} is not a duration ({err}): write \"3d\", \"12h\""))
            .and_then(|span| match span.is_zero() {
                true => Err("a lookback of 0 asks for nothing again: remove it".to_owned()),
                false => Ok(Lookback::Span(span)),
            }),
        toml::Value::Integer(n) if n > 0 => Ok(Lookback::Units(n.unsigned_abs())),
        other => Err(format!(
            "{other} is not a lookback: a duration (\"3d\") or a positive number of the cursor's \
             units"
        )),
    };
    parsed
        .map(|value| Some(Located { value, line }))
        .map_err(|message| vec![src.problem(line, key, message)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookback_moves_each_kind_of_cursor_back() {
        let days = Lookback::Span(std::time::Duration::from_secs(3 * 86_400));
        assert_eq!(
            days.before("2024-03-10T06:00:00Z").unwrap(),
            "2024-03-07T06:00:00Z"
        );
        assert_eq!(
            days.before("2024-03-10T06:00:00.5+02:00").unwrap(),
            "2024-03-07T06:00:00.500+02:00"
        );
        assert_eq!(days.before("2024-03-01").unwrap(), "2024-02-27");
        let hours = Lookback::Span(std::time::Duration::from_secs(36 * 3600));
        assert_eq!(
            hours.before("2024-03-10").unwrap(),
            "2024-03-08",
            "rounded up"
        );
        assert_eq!(Lookback::Units(100).before("1050").unwrap(), "950");
        assert!(days.before("1050").unwrap_err().contains("is a number"));
        assert!(Lookback::Units(3)
            .before("2024-03-10T06:00:00Z")
            .unwrap_err()
            .contains("is a time"));
        assert!(days.before("abc").is_err());
    }
}
