//! Google API Discovery documents: the typed model, method lookup by id, and where documents
//! come from (see [`source`]).
//!
//! Only the parts gscrape uses are modelled; unknown fields are ignored so new documents load.

pub mod lock;
pub mod schema;
pub mod source;
pub mod value;

use indexmap::IndexMap;
use serde::Deserialize;

pub use source::{DiscoveryError, DiscoverySource};

/// One Discovery REST description (`{api}:{version}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub title: String,
    pub root_url: String,
    #[serde(default)]
    pub service_path: String,
    /// Parameters every method accepts (`fields`, `key`, `quotaUser`, ...).
    #[serde(default)]
    pub parameters: IndexMap<String, Parameter>,
    #[serde(default)]
    pub resources: IndexMap<String, Resource>,
    /// Top-level methods (a few APIs such as oauth2:v2 have them).
    #[serde(default)]
    pub methods: IndexMap<String, Method>,
    #[serde(default)]
    pub schemas: IndexMap<String, Schema>,
    #[serde(default)]
    pub auth: Option<Auth>,
    /// The document's revision (`20261106`): what a run's manifest and `gscrape.lock` name.
    #[serde(default)]
    pub revision: String,
    #[serde(default)]
    pub etag: Option<String>,
    /// SHA-256 of the document's bytes (set when it is read).
    #[serde(skip)]
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Resource {
    #[serde(default)]
    pub methods: IndexMap<String, Method>,
    #[serde(default)]
    pub resources: IndexMap<String, Resource>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Auth {
    pub oauth2: Option<OAuth2>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OAuth2 {
    #[serde(default)]
    pub scopes: IndexMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Method {
    pub id: String,
    pub path: String,
    pub http_method: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub parameters: IndexMap<String, Parameter>,
    #[serde(default)]
    pub parameter_order: Vec<String>,
    #[serde(default, deserialize_with = "schema_ref")]
    pub request: Option<SchemaRef>,
    #[serde(default, deserialize_with = "schema_ref")]
    pub response: Option<SchemaRef>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// Whether calling a method changes data in the account. An export only reads, so a query of
/// a method that writes runs only when it says `allow_writes = true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Read,
    /// Why it counts as a write (its HTTP method, and that no read-only scope is accepted).
    Write(String),
}

impl Method {
    /// A read is a GET, or a method a read-only scope may call (GA4 `runReport`, Search
    /// Console `query` and BigQuery `jobs.query` are POSTs that read).
    pub fn access(&self) -> Access {
        if self.http_method.eq_ignore_ascii_case("GET")
            || self.scopes.iter().any(|s| is_read_only_scope(s))
        {
            return Access::Read;
        }
        Access::Write(format!(
            "it is {} {} and accepts no read-only scope",
            self.http_method, self.path
        ))
    }
}

/// `….readonly` (most APIs) or `….read-only` (`cloud-platform.read-only`).
pub fn is_read_only_scope(scope: &str) -> bool {
    scope.ends_with(".readonly") || scope.ends_with(".read-only")
}

/// `{"$ref": "Name"}` as used by a method's request and response.
#[derive(Debug, Clone, Deserialize)]
pub struct SchemaRef {
    #[serde(rename = "$ref")]
    pub reference: String,
}

/// A request or response given by `$ref`; one described inline (a handful of documents do)
/// has no named schema to follow and counts as none.
fn schema_ref<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SchemaRef>, D::Error> {
    let value: Option<serde_json::Value> = Option::deserialize(deserializer)?;
    Ok(value
        .as_ref()
        .and_then(|v| v.get("$ref"))
        .and_then(|r| r.as_str())
        .map(|r| SchemaRef {
            reference: r.to_owned(),
        }))
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Path,
    Query,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    #[serde(rename = "type", default = "string_type")]
    pub kind: String,
    pub location: Location,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub repeated: bool,
    #[serde(rename = "enum", default)]
    pub enum_values: Vec<String>,
    #[serde(default)]
    pub description: String,
    pub format: Option<String>,
    pub pattern: Option<String>,
    #[serde(default)]
    pub deprecated: bool,
}

fn string_type() -> String {
    "string".to_owned()
}

/// A JSON schema as Discovery writes it (a subset of JSON Schema draft 3).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(rename = "$ref")]
    pub reference: Option<String>,
    #[serde(default)]
    pub properties: IndexMap<String, Schema>,
    pub items: Option<Box<Schema>>,
    pub additional_properties: Option<Box<Schema>>,
    pub format: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "enum", default)]
    pub enum_values: Vec<String>,
    pub pattern: Option<String>,
    /// `required: true` on a property: every request must set it.
    #[serde(default)]
    pub required: bool,
    /// `annotations.required`: the ids of the methods whose request must set this property.
    #[serde(default)]
    pub annotations: Annotations,
}

/// A property's `annotations` (Discovery: `required`, a list of method ids).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Annotations {
    #[serde(default)]
    pub required: Vec<String>,
}

impl Schema {
    /// True when a request of `method_id` must set this property.
    pub fn required_by(&self, method_id: &str) -> bool {
        self.required || self.annotations.required.iter().any(|m| m == method_id)
    }
}

impl Document {
    /// Parses a document from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// `api:version`, the name Google uses for a document.
    pub fn label(&self) -> String {
        format!("{}:{}", self.name, self.version)
    }

    /// Every method of the document in document order, nested resources included.
    pub fn methods(&self) -> Vec<&Method> {
        fn walk<'a>(resources: &'a IndexMap<String, Resource>, out: &mut Vec<&'a Method>) {
            for resource in resources.values() {
                out.extend(resource.methods.values());
                walk(&resource.resources, out);
            }
        }
        let mut out: Vec<&Method> = self.methods.values().collect();
        walk(&self.resources, &mut out);
        out
    }

    /// Looks a method up by its Discovery `id` (e.g. `drive.files.list`).
    pub fn method(&self, id: &str) -> Option<&Method> {
        self.methods().into_iter().find(|m| m.id == id)
    }

    /// Up to three method ids closest to `id`, for "did you mean" hints.
    pub fn similar_method_ids(&self, id: &str) -> Vec<String> {
        crate::util::nearest(id, self.methods().iter().map(|m| m.id.as_str()))
    }

    /// The base every method path is appended to: the root URL in force for this API (its
    /// override, or `rootUrl` in the universe; [`crate::endpoints`]) and `servicePath`. The one
    /// reading of the root, so that runs, `validate`, `describe` and the Sheets destination
    /// all go where an override says.
    pub fn base_url(&self) -> String {
        format!("{}{}", self.root(), self.service_path)
    }

    /// The root URL in force for this API (ending in `/`).
    pub fn root(&self) -> String {
        crate::endpoints::root_url(&self.name, &self.root_url)
    }

    pub fn schema(&self, name: &str) -> Option<&Schema> {
        self.schemas.get(name)
    }
}

impl Method {
    /// A parameter of the method, or one of the document's global parameters.
    pub fn parameter<'a>(&'a self, doc: &'a Document, name: &str) -> Option<&'a Parameter> {
        self.parameters
            .get(name)
            .or_else(|| doc.parameters.get(name))
    }
}
