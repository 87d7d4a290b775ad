//! What a fan-out chain reads of the queries above it. A chain of `messages` below `ids`
//! below `users` reads the record of `ids` it runs for (`{{ ids.id }}`) and the record of
//! `users` that `ids`' chain ran for (`{{ users.primaryEmail }}`), each under its query's
//! name, at any depth. A record is read with its query's computed columns (`columns` entries
//! with a template `value`) among its fields: `{ name = "owner", value = "{{
//! users.primaryEmail }}" }` of `ids` is `{{ ids.owner }}` below it, as the CSV shows it.
//!
//! Every record a query hands a child comes with its [`Lineage`]: the [`Ancestry`] of the
//! chain that fetched it and that chain's computed columns. Both are the same for all the
//! records of one chain, so they are shared (an `Arc`), never copied per record, and never
//! spilled: a spilled chain's records take up their lineage again when they are written.

use std::sync::Arc;

use serde_json::Value;

/// The records above one request chain, each under its query's name: the root query's
/// first, the parent's last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ancestry {
    records: Vec<(String, Arc<Value>)>,
}

impl Ancestry {
    /// The records, the root query's first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.records.iter().map(|(name, r)| (name.as_str(), &**r))
    }

    /// The record of the query named `name`, if it is above.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.records
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, r)| &**r)
    }

    /// The parent's record (the nearest).
    pub fn parent(&self) -> Option<&Value> {
        self.records.last().map(|(_, r)| &**r)
    }

    /// This ancestry with `record` of the query `name` below it (the record as is).
    pub fn below(&self, name: &str, record: Value) -> Ancestry {
        let mut records = self.records.clone();
        records.push((name.to_owned(), Arc::new(record)));
        Ancestry { records }
    }
}

/// What a query hands its fan-out children with each record: the ancestry of the chain that
/// fetched it, and that chain's computed columns.
#[derive(Debug, Default, PartialEq)]
pub struct Lineage {
    pub above: Ancestry,
    /// Each computed column's name and its text for the chain.
    pub computed: Vec<(String, String)>,
}

impl Lineage {
    /// The ancestry of a child's chain for `record` of the query `name`: this lineage's
    /// records, then `record` with the computed columns among its fields (a computed column
    /// named as a field of the record is read as the column, as the CSV shows it).
    pub fn child(&self, name: &str, record: Value) -> Ancestry {
        self.above
            .below(name, with_computed(record, &self.computed))
    }
}

/// `record` with `computed` among its fields (a record that is no object is kept as is).
fn with_computed(mut record: Value, computed: &[(String, String)]) -> Value {
    if let Value::Object(map) = &mut record {
        for (name, text) in computed {
            map.insert(name.clone(), Value::String(text.clone()));
        }
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_chain_reads_every_record_above_it_with_their_computed_columns() {
        let users = Lineage::default();
        let ids_chain = users.child("users", json!({"primaryEmail": "a@x", "id": "1"}));
        assert_eq!(
            ids_chain.parent(),
            Some(&json!({"primaryEmail": "a@x", "id": "1"}))
        );
        let ids = Lineage {
            above: ids_chain,
            computed: vec![
                ("owner".to_owned(), "a@x".to_owned()),
                ("id".to_owned(), "computed".to_owned()),
            ],
        };
        let messages_chain = ids.child("ids", json!({"id": "m1", "threadId": "t1"}));
        let names: Vec<&str> = messages_chain.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["users", "ids"]);
        assert_eq!(messages_chain.get("users").unwrap()["primaryEmail"], "a@x");
        // The computed columns are fields of the parent's record, over a field of one name.
        assert_eq!(
            messages_chain.parent(),
            Some(&json!({"id": "computed", "threadId": "t1", "owner": "a@x"}))
        );
        assert_eq!(messages_chain.get("nobody"), None);
    }
}
