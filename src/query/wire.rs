//! The query file exactly as written: serde's view of the TOML, with spans for messages.
//! Converted into a checked [`super::Query`] by `super::parse`.

use std::num::NonZeroU64;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QueryFile {
    pub name: Option<Spanned<String>>,
    pub api: Spanned<String>,
    pub version: Spanned<String>,
    pub method: Spanned<String>,
    pub discovery: Option<Spanned<String>>,
    #[serde(default)]
    pub params: IndexMap<Spanned<String>, Spanned<toml::Value>>,
    pub body: Option<Spanned<toml::Table>>,
    pub records: Option<Spanned<String>>,
    pub columns: Option<Vec<Spanned<ColumnEntry>>>,
    pub output: Option<Spanned<String>>,
    pub max_pages: Option<Spanned<NonZeroU64>>,
    pub max_records: Option<Spanned<NonZeroU64>>,
    pub subject: Option<Spanned<String>>,
}

/// `"owners[0].emailAddress"` or `{ name = "Owner", path = "owners[0].emailAddress" }`.
#[derive(Debug)]
pub(super) struct ColumnEntry {
    pub name: Option<String>,
    pub path: String,
}

impl<'de> Deserialize<'de> for ColumnEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = ColumnEntry;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"a path string or a table { name = "...", path = "..." }"#)
            }

            fn visit_str<E: de::Error>(self, path: &str) -> Result<ColumnEntry, E> {
                Ok(ColumnEntry {
                    name: None,
                    path: path.to_owned(),
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ColumnEntry, A::Error> {
                let (mut name, mut path) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => name = Some(map.next_value::<String>()?),
                        "path" => path = Some(map.next_value::<String>()?),
                        other => return Err(de::Error::unknown_field(other, &["name", "path"])),
                    }
                }
                let path = path.ok_or_else(|| de::Error::missing_field("path"))?;
                Ok(ColumnEntry { name, path })
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}
