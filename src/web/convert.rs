//! Rust values as JavaScript receives them: plain objects (`to_js`) and the structured errors
//! every call throws, `{kind, field, message}` (`js_err`), with the option at fault named when
//! the message or serde says which.

use crate::sampler::SamplerOptions;
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;

/// An error as JavaScript receives it: `kind` is `Error::kind` ("input", "model", "gpu",
/// "limits"), `field` the request option at fault when known (else null). Anything else a call
/// throws (a wasm trap, running out of memory) is a crash, after which the worker starts over.
#[derive(Serialize)]
struct ErrorJs {
    kind: &'static str,
    field: Option<String>,
    message: String,
}

pub(crate) fn error_js(kind: &'static str, field: Option<&str>, message: String) -> JsValue {
    let err = ErrorJs { kind, field: field.map(str::to_string), message };
    to_js(&err).unwrap_or_else(|_| JsValue::from_str(&err.message))
}

pub(crate) fn input_err(field: Option<&str>, message: impl Into<String>) -> JsValue {
    error_js("input", field, message.into())
}

pub(crate) fn js_err(e: crate::Error) -> JsValue {
    let field = match &e {
        crate::Error::Input(m) => flag_field(m),
        _ => None,
    };
    error_js(e.kind(), field.as_deref(), option_names(&e.to_string()))
}

/// The engine's messages name the CLI's flags (`--gen-length 10`); JavaScript's options are
/// the fields (`gen_length 10`).
pub(crate) fn option_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("--") {
        let (before, after) = (&rest[..at], &rest[at + 2..]);
        out.push_str(before);
        let flag: String = after.chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
        let name = flag.trim_end_matches('-');
        let starts = before.chars().last().is_none_or(|c| c == ' ' || c == '(' || c == '`');
        if starts && name.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.push_str(&name.replace('-', "_"));
            rest = &after[name.len()..];
        } else {
            out.push_str("--");
            rest = after;
        }
    }
    out + rest
}

/// The option an input error is about: the messages name it as the CLI spells it, first
/// (`--block-length 3 ...`, `--temperature -1 must be 0 or more`), which is the field's name
/// with dashes (`block_length`). None when the message names no flag.
fn flag_field(message: &str) -> Option<String> {
    let at = message.find("--")?;
    let name: String = message[at + 2..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
    let name = name.trim_end_matches('-');
    (!name.is_empty()).then(|| name.replace('-', "_"))
}

/// A request or options object serde refused: serde's message, and the key at fault, found by
/// deserializing each key alone (`T` has defaults for every field; a bad key inside `options`
/// is named itself: `steps`, not `options`).
pub(crate) fn bad_value<T: DeserializeOwned>(what: &str, value: &JsValue, e: serde_wasm_bindgen::Error) -> JsValue {
    let e = e.to_string();
    input_err(faulty_key::<T>(value).as_deref(), format!("bad {what}: {}", e.trim_start_matches("Error: ")))
}

fn faulty_key<T: DeserializeOwned>(value: &JsValue) -> Option<String> {
    let obj = value.dyn_ref::<js_sys::Object>()?;
    for key in js_sys::Object::keys(obj).iter() {
        let v = js_sys::Reflect::get(obj, &key).ok()?;
        let one = js_sys::Object::new();
        js_sys::Reflect::set(&one, &key, &v).ok()?;
        if serde_wasm_bindgen::from_value::<T>(one.into()).is_err() {
            let k = key.as_string()?;
            if k == "options" {
                if let Some(inner) = faulty_key::<SamplerOptions>(&v) {
                    return Some(inner);
                }
            }
            return Some(k);
        }
    }
    None
}

pub(crate) fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from_str(&e.to_string()))
}
