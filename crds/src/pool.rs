//! The `OpenSpacePool` API (`openspace.io/v1alpha1`): instances started ahead of demand (warm),
//! which sessions naming the pool in `spec.pool` claim instead of starting cold. The operator
//! keeps `warm` of them ready across the matching rendering servers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{default_profile, Resolution};

/// What a pool keeps ready.
// Each `printcolumn(...)` repeats `type_`; clippy takes that for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "openspace.io",
    version = "v1alpha1",
    kind = "OpenSpacePool",
    namespaced,
    shortname = "ospool",
    status = "OpenSpacePoolStatus",
    doc = "Warm OpenSpace instances kept started for sessions to claim",
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.ready"),
    printcolumn(name = "Starting", type_ = "integer", json_path = ".status.starting"),
    printcolumn(name = "Claimed", type_ = "integer", json_path = ".status.claimed"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct OpenSpacePoolSpec {
    /// The profile every warm instance starts with; sessions with another profile start cold.
    #[serde(default = "default_profile")]
    #[schemars(
        default = "default_profile",
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
    )]
    pub profile: String,
    /// The size warm instances start at; a session of another size is resized after its claim.
    #[serde(default)]
    pub resolution: Resolution,
    /// Which rendering servers (agent pods, by label) run the pool's instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_selector: Option<LabelSelector>,
    /// How many instances to keep started and unclaimed.
    #[schemars(range(min = 0, max = 1000))]
    pub warm: u32,
    /// A cap on the pool's warm plus claimed instances (none: only `warm` bounds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100000))]
    pub max_instances: Option<u32>,
}

/// What the operator observed of the pool.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenSpacePoolStatus {
    /// Warm instances RUNNING and unclaimed.
    #[serde(default)]
    pub ready: u32,
    /// Warm instances still initialising (or whose START is in flight).
    #[serde(default)]
    pub starting: u32,
    /// Instances of this pool that sessions claimed and still run.
    #[serde(default)]
    pub claimed: u32,
    /// Standard conditions: `Ready` (as many ready as `warm` asks for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;
    use serde_json::{json, Value};

    #[test]
    fn the_pool_crd_names_columns_and_bounds_are_as_documented() {
        let crd: Value = serde_json::to_value(OpenSpacePool::crd()).unwrap();
        assert_eq!(crd["metadata"]["name"], "openspacepools.openspace.io");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["shortNames"], json!(["ospool"]));
        let version = &crd["spec"]["versions"][0];
        assert!(version["subresources"]["status"].is_object());
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Ready", "Starting", "Claimed", "Age"]);
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(spec["required"], json!(["warm"]));
        assert_eq!(spec["properties"]["warm"]["minimum"].as_f64(), Some(0.0));
        assert_eq!(spec["properties"]["profile"]["default"], "default");
    }

    #[test]
    fn a_pool_needs_only_warm() {
        let spec: OpenSpacePoolSpec = serde_json::from_value(json!({"warm": 3})).unwrap();
        assert_eq!(
            (
                spec.warm,
                spec.profile.as_str(),
                spec.resolution,
                spec.max_instances
            ),
            (3, "default", Resolution::default(), None)
        );
    }
}
