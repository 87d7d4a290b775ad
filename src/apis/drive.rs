//! Drive: its lists leave out the files of shared drives unless asked for them.

use super::Api;
use crate::discovery::Method;

pub(super) struct Drive;

impl Api for Drive {
    fn handles(&self, method_id: &str) -> bool {
        method_id.starts_with("drive.") && method_id.ends_with(".list")
    }

    fn default_params(&self, method: &Method) -> Vec<(&'static str, &'static str)> {
        ["supportsAllDrives", "includeItemsFromAllDrives"]
            .into_iter()
            .filter(|name| method.parameters.contains_key(*name))
            .map(|name| (name, "true"))
            .collect()
    }
}
