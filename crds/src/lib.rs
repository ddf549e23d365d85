//! The `OpenSpaceSession` API (`openspace.io/v1alpha1`): one interactive OpenSpace stream that the
//! operator schedules onto a rendering server (agent); and `OpenSpacePool` ([`pool`]), warm
//! instances sessions claim. The CRD YAML in `crds/` is generated from these types by `crdgen`
//! and checked by CI, so the types are the single source of truth.
//!
//! Validation lives in the schema where the apiserver can enforce it (v1.20 has no CEL rules):
//! resolution bounds, the duration format, the phase enum.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod pool;
pub use pool::{OpenSpacePool, OpenSpacePoolSpec, OpenSpacePoolStatus};

/// What a session asks for.
// Each `printcolumn(...)` repeats `type_ = "string"`; clippy takes that for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "openspace.io",
    version = "v1alpha1",
    kind = "OpenSpaceSession",
    namespaced,
    shortname = "oss",
    status = "OpenSpaceSessionStatus",
    doc = "An interactive OpenSpace session streamed to browsers over WebRTC",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Server", type_ = "string", json_path = ".status.server"),
    printcolumn(name = "ID", type_ = "integer", json_path = ".status.instanceId"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct OpenSpaceSessionSpec {
    /// Stream resolution; changing it resizes the running instance.
    #[serde(default)]
    pub resolution: Resolution,
    /// The OpenSpace profile (scene) to start.
    #[serde(default = "default_profile")]
    #[schemars(
        default = "default_profile",
        length(min = 1, max = 64),
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
    )]
    pub profile: String,
    /// Which rendering servers (agent pods, by label) may run this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_selector: Option<LabelSelector>,
    /// End the session this long after it started running, e.g. `2h` or `90m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d))+$"))]
    pub max_duration: Option<String>,
    /// End the session when nobody has watched it for this long, e.g. `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d))+$"))]
    pub idle_timeout: Option<String>,
    /// An `OpenSpacePool` in this namespace: take one of its warm instances when one is ready,
    /// else start cold as without it (the session never waits for the pool to refill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub pool: Option<String>,
}

pub(crate) fn default_profile() -> String {
    "default".to_owned()
}

/// Pixels; the same bounds as the agent's RESOLUTION command.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub struct Resolution {
    #[schemars(range(min = 16, max = 7680))]
    pub width: u32,
    #[schemars(range(min = 16, max = 4320))]
    pub height: u32,
}

impl Default for Resolution {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 720,
        }
    }
}

/// Where a session is in its life.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema, Default)]
pub enum Phase {
    /// Waiting for a rendering server with a free slot.
    #[default]
    Pending,
    /// START sent; the instance is initialising.
    Starting,
    /// The instance runs; `status.url` can be opened.
    Running,
    /// STOP sent; waiting for the slot to be free.
    Stopping,
    /// Ended on purpose (deleted, max duration, idle timeout).
    Ended,
    /// Ended by a failure (instance crash, rendering server lost); see `message`.
    Failed,
}

/// How a session with `spec.pool` got its instance.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum Start {
    /// It claimed one of the pool's warm instances.
    Warm,
    /// None was ready: it started one as a session without a pool does.
    Cold,
}

/// What the operator observed.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenSpaceSessionStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The agent pod (or external server) running the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The node of that agent pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The instance id on that server (the seed's `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<u32>,
    /// Where to watch and steer the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Time>,
    /// For people: why the session is in its phase (e.g. no capacity, crash reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The picture size the instance really streams: `spec.resolution` as the server applied it
    /// (rounded to even, clamped to what it supports), from its STATUS and RESOLUTION answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// With `spec.pool`: whether the instance was a claimed warm one or started cold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Start>,
    /// Standard conditions: `Scheduled`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {value:?} is not a duration like 90s, 10m or 1h30m")]
pub struct DurationError {
    pub field: &'static str,
    pub value: String,
}

/// Parses the schema's duration format (`^([0-9]+(ms|s|m|h|d))+$`).
pub fn parse_duration(field: &'static str, value: &str) -> Result<Duration, DurationError> {
    let error = || DurationError {
        field,
        value: value.to_owned(),
    };
    let mut total = Duration::ZERO;
    let mut rest = value;
    if rest.is_empty() {
        return Err(error());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(error)?;
        if digits == 0 {
            return Err(error());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| error())?;
        rest = &rest[digits..];
        let (unit, millis) = [
            ("ms", 1),
            ("s", 1_000),
            ("m", 60_000),
            ("h", 3_600_000),
            ("d", 86_400_000),
        ]
        .into_iter()
        .find(|(unit, _)| rest.starts_with(unit) && !(unit == &"m" && rest.starts_with("ms")))
        .ok_or_else(error)?;
        rest = &rest[unit.len()..];
        let part = number.checked_mul(millis).ok_or_else(error)?;
        total = total
            .checked_add(Duration::from_millis(part))
            .ok_or_else(error)?;
    }
    Ok(total)
}

impl OpenSpaceSessionSpec {
    pub fn max_duration(&self) -> Result<Option<Duration>, DurationError> {
        self.max_duration
            .as_deref()
            .map(|v| parse_duration("maxDuration", v))
            .transpose()
    }

    pub fn idle_timeout(&self) -> Result<Option<Duration>, DurationError> {
        self.idle_timeout
            .as_deref()
            .map(|v| parse_duration("idleTimeout", v))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;
    use serde_json::{json, Value};

    fn crd() -> Value {
        serde_json::to_value(OpenSpaceSession::crd()).unwrap()
    }

    fn spec_schema() -> Value {
        crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
    }

    #[test]
    fn the_crd_names_and_subresources_are_as_documented() {
        let crd = crd();
        assert_eq!(crd["metadata"]["name"], "openspacesessions.openspace.io");
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(crd["spec"]["names"]["shortNames"], json!(["oss"]));
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object());
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Phase", "Server", "ID", "URL", "Age"]);
    }

    #[test]
    fn the_schema_carries_bounds_defaults_and_formats() {
        let spec = spec_schema();
        let width = &spec["properties"]["resolution"]["properties"]["width"];
        assert_eq!(
            (width["minimum"].as_f64(), width["maximum"].as_f64()),
            (Some(16.0), Some(7680.0))
        );
        let height = &spec["properties"]["resolution"]["properties"]["height"];
        assert_eq!(
            (height["minimum"].as_f64(), height["maximum"].as_f64()),
            (Some(16.0), Some(4320.0))
        );
        assert_eq!(spec["properties"]["profile"]["default"], "default");
        assert!(spec["properties"]["maxDuration"]["pattern"].is_string());
        let phases = &crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
            ["status"]["properties"]["phase"];
        assert_eq!(
            phases["enum"],
            json!(["Pending", "Starting", "Running", "Stopping", "Ended", "Failed"]),
            "{phases}"
        );
    }

    #[test]
    fn an_empty_spec_gets_the_defaults() {
        let spec: OpenSpaceSessionSpec = serde_json::from_value(json!({})).unwrap();
        assert_eq!(
            spec.resolution,
            Resolution {
                width: 1280,
                height: 720
            }
        );
        assert_eq!(spec.profile, "default");
        assert_eq!(
            (spec.max_duration(), spec.idle_timeout()),
            (Ok(None), Ok(None))
        );
    }

    #[test]
    fn durations_parse_as_the_schema_allows() {
        let d = |s| parse_duration("maxDuration", s);
        assert_eq!(d("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(d("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("1d"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "",
            "h",
            "10",
            "10x",
            "1.5h",
            "-1h",
            "1h 30m",
            "99999999999999999999h",
        ] {
            assert!(d(bad).is_err(), "{bad:?}");
        }
    }
}
