//! The `documentation` topic (documentationtopic.cpp) and the Lua functions a built-in instance
//! runs through `luascript` (luascripttopic.cpp): exactly the functions its `lua` documentation
//! lists, called as `{"function":"openspace.time.UTC","arguments":[]}` or as a one-call script
//! `{"script":"return openspace.time.UTC()"}` (literal arguments only; there is no Lua here).

use serde_json::{json, Map, Value};

use super::scene::{self, PROPERTIES};
use super::World;

/// One function of the lua list: (library, name, arguments `(name, type)`, return type, help).
type Function = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

const FUNCTIONS: &[Function] = &[
    (
        "",
        "guiOrder",
        &[],
        "table",
        "The order of the GUI's property owners: none here",
    ),
    (
        "",
        "setPropertyValueSingle",
        &[("uri", "String"), ("value", "any")],
        "",
        "Sets a property",
    ),
    (
        "",
        "setPropertyValue",
        &[("uri", "String"), ("value", "any")],
        "",
        "Sets a property",
    ),
    (
        "",
        "getPropertyValue",
        &[("uri", "String")],
        "any",
        "Returns a property's value",
    ),
    (
        "",
        "propertyValue",
        &[("uri", "String")],
        "any",
        "Returns a property's value",
    ),
    (
        "",
        "hasProperty",
        &[("uri", "String")],
        "Boolean",
        "Whether the property exists",
    ),
    (
        "time",
        "UTC",
        &[],
        "String",
        "The simulation time, ISO 8601 (UTC)",
    ),
    (
        "time",
        "currentTime",
        &[],
        "Number",
        "The simulation time in seconds since J2000",
    ),
    (
        "time",
        "deltaTime",
        &[],
        "Number",
        "Simulated seconds per second",
    ),
    (
        "time",
        "isPaused",
        &[],
        "Boolean",
        "Whether simulation time stands still",
    ),
];

/// `documentation` of `kind` (documentationtopic.cpp's types).
pub fn documentation(kind: &str) -> Value {
    match kind {
        "lua" => lua_list(),
        "meta" => json!([{
            "name": "openspace-k8s built-in scene", "version": env!("CARGO_PKG_VERSION"),
            "description": "Earth, Moon and Sun drawn by the agent's software renderer",
            "author": "openspace-k8s", "url": "", "license": "",
        }]),
        "factories" => json!([]),
        "keyboard" | "keybindings" => json!({"name": "Keybindings", "keybindings": []}),
        _ => Value::Null,
    }
}

fn lua_list() -> Value {
    let mut libraries: Vec<(&str, Vec<Value>)> = Vec::new();
    for (library, name, args, returns, help) in FUNCTIONS {
        let function = json!({
            "name": name,
            "arguments": args.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>(),
            "returnType": returns, "help": help,
        });
        match libraries.iter_mut().find(|(l, _)| l == library) {
            Some((_, functions)) => functions.push(function),
            None => libraries.push((library, vec![function])),
        }
    }
    libraries
        .into_iter()
        .map(|(library, functions)| {
            let full = if library.is_empty() {
                "openspace".to_owned()
            } else {
                format!("openspace.{library}")
            };
            json!({"library": library, "name": library, "fullName": full, "functions": functions})
        })
        .collect()
}

/// What a `luascript` produced: the reply payload (`{"1": value}` or `{}`), or why it failed;
/// and a property write for the shell.
#[derive(Debug, PartialEq)]
pub struct LuaResult {
    pub value: Result<Value, String>,
    pub set: Option<(&'static str, Value)>,
}

pub fn run(payload: &Map<String, Value>, world: &World) -> LuaResult {
    let call = match (payload.get("function"), payload.get("script")) {
        (Some(Value::String(f)), _) => {
            let args = match payload.get("arguments") {
                Some(Value::Array(a)) => a.clone(),
                None => Vec::new(),
                Some(_) => return failed("\"arguments\" must be a list"),
            };
            Ok((f.clone(), args))
        }
        (_, Some(Value::String(script))) => parse_call(script),
        _ => Err("luascript needs \"function\" or \"script\"".to_owned()),
    };
    match call {
        Ok((function, args)) => call_function(&function, &args, world),
        Err(e) => failed(&e),
    }
}

fn failed(message: &str) -> LuaResult {
    LuaResult {
        value: Err(message.to_owned()),
        set: None,
    }
}

fn returns(value: Value) -> LuaResult {
    LuaResult {
        value: Ok(json!({"1": value})),
        set: None,
    }
}

fn call_function(function: &str, args: &[Value], world: &World) -> LuaResult {
    let name = function.strip_prefix("openspace.").unwrap_or(function);
    let uri = || args.first().and_then(Value::as_str).unwrap_or("");
    match name {
        "guiOrder" => returns(json!({})),
        "setPropertyValueSingle" | "setPropertyValue" => {
            match scene::validate_set(uri(), args.get(1), world) {
                Some(set) => LuaResult {
                    value: Ok(json!({})),
                    set: Some(set),
                },
                None => failed(&format!(
                    "cannot set {:?} to {}: the writable properties are {} and {}",
                    uri(),
                    args.get(1).unwrap_or(&Value::Null),
                    scene::FRICTION,
                    scene::FOV
                )),
            }
        }
        "getPropertyValue" | "propertyValue" => match scene::property(uri(), world) {
            Some(p) if uri() != "__rootOwner" => returns(p["Value"].clone()),
            _ => failed(&format!("no property {:?}", uri())),
        },
        "hasProperty" => returns(json!(PROPERTIES.contains(&uri()))),
        "time.UTC" => returns(json!(world.time.iso8601())),
        "time.currentTime" => returns(json!(world.time.j2000())),
        "time.deltaTime" => returns(json!(world.time.delta_time)),
        "time.isPaused" => returns(json!(world.time.paused)),
        _ => failed(&format!(
            "{function} is not a function of this instance (see documentation type \"lua\")"
        )),
    }
}

/// `[return] openspace.a.b(arg, ...)[;]` with literal arguments: strings ('..', "..", [[..]]),
/// numbers, true, false, nil.
fn parse_call(script: &str) -> Result<(String, Vec<Value>), String> {
    let bad = || format!("only a single call of a listed function is understood, not {script:?}");
    let s = script.trim().trim_end_matches(';').trim();
    let s = s.strip_prefix("return ").unwrap_or(s).trim();
    let open = s.find('(').ok_or_else(bad)?;
    let name = s[..open].trim();
    let inner = s[open + 1..].strip_suffix(')').ok_or_else(bad)?;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
    {
        return Err(bad());
    }
    let mut args = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (value, tail) = literal(rest).ok_or_else(bad)?;
        args.push(value);
        rest = tail.trim_start();
        rest = match rest.strip_prefix(',') {
            Some(t) => t.trim_start(),
            None if rest.is_empty() => rest,
            None => return Err(bad()),
        };
    }
    Ok((name.to_owned(), args))
}

fn literal(s: &str) -> Option<(Value, &str)> {
    for (open, close) in [("'", "'"), ("\"", "\""), ("[[", "]]")] {
        if let Some(body) = s.strip_prefix(open) {
            let end = body.find(close)?;
            return Some((json!(&body[..end]), &body[end + close.len()..]));
        }
    }
    let end = s
        .find(|c: char| c == ',' || c.is_whitespace())
        .unwrap_or(s.len());
    let (word, tail) = s.split_at(end);
    let value = match word {
        "true" => json!(true),
        "false" => json!(false),
        "nil" => Value::Null,
        number => json!(number.parse::<f64>().ok().filter(|n| n.is_finite())?),
    };
    Some((value, tail))
}
