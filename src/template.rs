//! Templates in query files (`{{ messages.id }}`), rendered with minijinja. A string is a
//! template when it holds `{{` or `{%`; anything else is used as written.
//!
//! What a template may name is checked before a run: the variables a query may use are known
//! up front (the parent query of a fan-out, ...), and naming another is a validation error.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior, Value};

/// True when `text` must be rendered.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The template engine with gscrape's settings.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        let mut env = Environment::new();
        // A field missing from a record renders as an empty string (records are sparse), but
        // an unknown variable is caught by `check` before anything runs.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        Templates { env }
    }
}

impl Templates {
    /// Checks the syntax of `source` and that every variable it reads is one of `known`.
    pub fn check(&self, source: &str, known: &[&str]) -> Result<(), String> {
        let template = self.env.template_from_str(source).map_err(|e| {
            format!(
                "invalid template {source:?}: {}",
                e.detail().unwrap_or(&e.to_string())
            )
        })?;
        let used: BTreeSet<String> = template.undeclared_variables(false).into_iter().collect();
        let unknown: Vec<&String> = used
            .iter()
            .filter(|v| !known.contains(&v.as_str()))
            .collect();
        match unknown.as_slice() {
            [] => Ok(()),
            names => {
                let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                let known = if known.is_empty() {
                    "none in this query".to_owned()
                } else {
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                Err(format!(
                    "{source:?} uses the undefined variable {}; defined here: {known}",
                    names.join(", ")
                ))
            }
        }
    }

    /// Renders `source` (or returns it as is when it is not a template).
    pub fn render(&self, source: &str, context: &Value) -> Result<String, String> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        self.env
            .render_str(source, context)
            .map_err(|e| format!("cannot render {source:?}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_fields_of_the_context() {
        let t = Templates::default();
        let ctx = Value::from(minijinja::value::Serde(
            serde_json::json!({"messages": {"id": "m1"}}),
        ));
        assert_eq!(t.render("id-{{ messages.id }}", &ctx).unwrap(), "id-m1");
        assert_eq!(t.render("{{ messages.missing.deeper }}", &ctx).unwrap(), "");
        assert_eq!(t.render("plain", &ctx).unwrap(), "plain");
    }

    #[test]
    fn unknown_variables_are_named() {
        let t = Templates::default();
        assert!(t.check("{{ messages.id }}", &["messages"]).is_ok());
        assert_eq!(
            t.check("{{ mesages.id }}", &["messages"]).unwrap_err(),
            "\"{{ mesages.id }}\" uses the undefined variable `mesages`; defined here: `messages`"
        );
        assert!(t
            .check("{{ x", &[])
            .unwrap_err()
            .starts_with("invalid template"));
    }
}
