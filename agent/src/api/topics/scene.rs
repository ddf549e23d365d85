//! The built-in instance's properties, as OpenSpace's `get`, `subscribe` and `set` topics
//! (getpropertytopic.cpp, subscriptiontopic.cpp, setpropertytopic.cpp) and the property JSON of
//! `jsonconverters.cpp` (`{"Description":{..},"Value":v}`) show them.

use serde_json::{json, Value};

use super::camera::NODES;
use super::World;
use crate::media::input::InputEvent;
use crate::media::renderer::camera::DEFAULT_FOV_Y;

/// The camera's focus node (read-only here: the built-in camera always orbits the planet).
pub const ANCHOR: &str = "NavigationHandler.OrbitalNavigator.Anchor";
/// The camera's aim node; empty means "the anchor".
pub const AIM: &str = "NavigationHandler.OrbitalNavigator.Aim";
pub const FRICTION: &str = "NavigationHandler.OrbitalNavigator.Friction.RotationalFriction";
/// Horizontal field of view in degrees (renderengine.cpp's `HorizFieldOfView`).
pub const FOV: &str = "RenderEngine.HorizFieldOfView";
/// Every property URI the built-in instance knows.
pub const PROPERTIES: [&str; 4] = [ANCHOR, AIM, FRICTION, FOV];
/// The field of view a client may set, in degrees (the renderer's camera takes 5..170
/// vertically).
const FOV_RANGE: (f32, f32) = (10.0, 150.0);

/// The instance's writable state, shared by all its API connections.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// OpenSpace's default is on; the built-in camera has no inertia either way (the value is
    /// kept so the GUI's checkbox round-trips).
    pub friction: bool,
    /// Horizontal field of view set by a client (degrees); None: the renderer's default (45
    /// degrees vertically, so the horizontal one depends on the picture's aspect).
    pub fov: Option<f32>,
}

impl Default for Scene {
    fn default() -> Self {
        Self {
            friction: true,
            fov: None,
        }
    }
}

impl Scene {
    /// Applies a write from [`validate_set`]; returns the camera input it needs, if any.
    pub fn apply(&mut self, uri: &str, value: &Value) -> Option<InputEvent> {
        match uri {
            FRICTION => {
                self.friction = value.as_bool()?;
                None
            }
            FOV => {
                let degrees = value.as_f64()? as f32;
                self.fov = Some(degrees);
                Some(InputEvent::FieldOfView {
                    horizontal_degrees: degrees,
                })
            }
            _ => None,
        }
    }
}

/// The horizontal field of view in degrees for the renderer's default vertical one.
fn default_fov(aspect: f32) -> f32 {
    let aspect = if aspect.is_finite() && aspect > 0.0 {
        aspect
    } else {
        16.0 / 9.0
    };
    (2.0 * ((DEFAULT_FOV_Y * 0.5).tan() * aspect).atan()).to_degrees()
}

fn describe(uri: &str, name: &str, kind: &str, read_only: bool, value: Value) -> Value {
    let mut description = json!({
        "Identifier": uri, "Name": name, "Type": kind, "Description": "",
        "MetaData": {"Visibility": "User", "ReadOnly": read_only},
    });
    if uri == FOV {
        description["AdditionalData"] = json!({
            "MinimumValue": FOV_RANGE.0, "MaximumValue": FOV_RANGE.1,
            "SteppingValue": 0.1, "Exponent": 1.0});
    }
    json!({"Description": description, "Value": value})
}

/// The property at `uri` (`{"Description","Value"}`), or for `__rootOwner` the owner tree
/// (`{identifier,guiName,description,properties,subowners,tag,uri}`). None: no such property.
pub fn property(uri: &str, world: &World) -> Option<Value> {
    let scene = &world.scene;
    Some(match uri {
        "__rootOwner" => root(world),
        ANCHOR => describe(ANCHOR, "Anchor", "StringProperty", true, json!(NODES[0].0)),
        AIM => describe(AIM, "Aim", "StringProperty", true, json!("")),
        FRICTION => describe(
            FRICTION,
            "Rotational Friction",
            "BoolProperty",
            false,
            json!(scene.friction),
        ),
        FOV => describe(
            FOV,
            "Horizontal Field of View",
            "FloatProperty",
            false,
            json!(scene.fov.unwrap_or_else(|| default_fov(world.aspect))),
        ),
        _ => return None,
    })
}

fn owner(uri: &str, gui_name: &str, properties: Vec<Value>, subowners: Vec<Value>) -> Value {
    let identifier = uri.rsplit('.').next().unwrap_or(uri);
    json!({"identifier": identifier, "guiName": gui_name, "description": "",
           "properties": properties, "subowners": subowners, "tag": [], "uri": uri})
}

fn root(world: &World) -> Value {
    let props =
        |uris: &[&str]| -> Vec<Value> { uris.iter().filter_map(|u| property(u, world)).collect() };
    let navigator = owner(
        "NavigationHandler.OrbitalNavigator",
        "Orbital Navigator",
        props(&[ANCHOR, AIM]),
        vec![owner(
            "NavigationHandler.OrbitalNavigator.Friction",
            "Friction",
            props(&[FRICTION]),
            vec![],
        )],
    );
    let nodes = NODES
        .iter()
        .map(|(id, name)| owner(&format!("Scene.{id}"), name, vec![], vec![]))
        .collect();
    owner(
        "",
        "",
        vec![],
        vec![
            owner(
                "NavigationHandler",
                "Navigation Handler",
                vec![],
                vec![navigator],
            ),
            owner("RenderEngine", "Render Engine", props(&[FOV]), vec![]),
            owner("Scene", "Scene", vec![], nodes),
        ],
    )
}

/// A `set` of `uri` to `value` the built-in instance takes: (URI, value as stored). None for
/// unknown or read-only properties and values of the wrong type (OpenSpace logs those and
/// answers nothing).
pub fn validate_set(
    uri: &str,
    value: Option<&Value>,
    _world: &World,
) -> Option<(&'static str, Value)> {
    let value = value?;
    match uri {
        FRICTION => Some((FRICTION, json!(value.as_bool()?))),
        FOV => {
            let degrees = value.as_f64().filter(|d| d.is_finite())? as f32;
            Some((FOV, json!(degrees.clamp(FOV_RANGE.0, FOV_RANGE.1))))
        }
        _ => None,
    }
}
