//! What a report's response says about its own numbers: sampled, thresholded, folded into
//! "(other)", truncated, restricted, not final yet, or warned about. The numbers are written
//! as the API sent them; the caveats travel beside them (a warning line, the summary) so that
//! nobody publishes sampled totals without knowing, and `strict = true` refuses them.
//! Each report's module reads its own response's fields (`crate::apis`).

use std::fmt;

/// One thing a report's response says about its numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Caveat {
    pub kind: CaveatKind,
    /// What the response said, in words (the sample's share, the first date not final).
    pub detail: String,
}

/// The kinds of caveat, as the summary names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaveatKind {
    /// The numbers come from a sample of the data (GA4 `samplingMetadatas`).
    Sampled,
    /// Rows with few users may be withheld (GA4 `subjectToThresholding`).
    Thresholded,
    /// Rows were folded into an "(other)" row (GA4 `dataLossFromOtherRow`).
    OtherRow,
    /// The report was cut short (GA4 `dataTruncationReasons`).
    Truncated,
    /// Metrics were withheld from this credential (GA4 `schemaRestrictionResponse`).
    Restricted,
    /// Recent data may still change (Search Console `metadata.firstIncompleteDate`).
    Incomplete,
    /// The API reported errors or warnings beside the rows (BigQuery `errors`, YouTube
    /// Analytics `errors`).
    Warning,
}

impl CaveatKind {
    /// The summary's name of the kind (`sampled`, `other_row`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CaveatKind::Sampled => "sampled",
            CaveatKind::Thresholded => "thresholded",
            CaveatKind::OtherRow => "other_row",
            CaveatKind::Truncated => "truncated",
            CaveatKind::Restricted => "restricted",
            CaveatKind::Incomplete => "incomplete",
            CaveatKind::Warning => "warning",
        }
    }
}

impl Caveat {
    pub fn new(kind: CaveatKind, detail: impl Into<String>) -> Self {
        Caveat {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Caveat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

/// The caveats of one query, each once (every page of a report says the same), the first
/// [`Caveats::LISTED`] of them kept: a fan-out over a thousand properties, each sampled
/// differently, keeps a summary small and says how many more there were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caveats {
    pub listed: Vec<Caveat>,
    /// Distinct caveats beyond those listed.
    pub unlisted: u64,
}

impl Caveats {
    pub const LISTED: usize = 20;

    /// Adds `new`, each caveat once.
    pub fn note(&mut self, new: Vec<Caveat>) {
        for caveat in new {
            if self.listed.contains(&caveat) {
                continue;
            }
            match self.listed.len() < Self::LISTED {
                true => self.listed.push(caveat),
                false => self.unlisted += 1,
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caveat_is_noted_once_and_the_list_is_bounded() {
        let sampled =
            |n: usize| Caveat::new(CaveatKind::Sampled, format!("{n} of 100 events read"));
        let mut all = Caveats::default();
        all.note(vec![sampled(1), sampled(1)]);
        all.note(vec![sampled(1)]);
        assert_eq!(all.listed, [sampled(1)]);
        all.note((0..Caveats::LISTED + 5).map(sampled).collect());
        assert_eq!(all.listed.len(), Caveats::LISTED);
        assert_eq!(all.listed[1], sampled(0));
        // 1 was listed already; 0..LISTED+5 brings LISTED+4 new ones, LISTED-1 of them listed.
        assert_eq!(all.unlisted, 5);
    }
}
