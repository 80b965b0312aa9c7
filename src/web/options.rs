//! The sampler's defaults and their checks, exported once for the page's settings form and the
//! engine API (`www/settings.js`, `www/unmask.js`), and the page's quantization names.

use super::convert::{bad_value, input_err, js_err, to_js};
use crate::model::{DType, Quant};
use crate::sampler::SamplerOptions;
use wasm_bindgen::prelude::*;

/// The sampler's defaults and the limits the settings follow, the one source of the page's
/// settings form and the engine API: `{options, span_length, max_span, one_block}`.
#[wasm_bindgen]
pub fn defaults() -> Result<JsValue, JsValue> {
    to_js(&serde_json::json!({
        "options": SamplerOptions::default(),
        // `Request::prepare`'s span for an infill that names none.
        "span_length": 4,
        "max_span": crate::sampler::text::MAX_SPAN,
        "one_block": SamplerOptions::ONE_BLOCK,
    }))
}

/// Checks sampler options as a request would (`infill`: only what an infill uses; its lengths
/// come from its text): null when they are fine, else the structured error a request with them
/// would get. Unknown keys are refused too: a misspelt option would otherwise be ignored.
#[wasm_bindgen(js_name = validateOptions)]
pub fn validate_options(options: JsValue, infill: Option<bool>) -> JsValue {
    match check_options(&options, infill.unwrap_or(false)) {
        Ok(()) => JsValue::NULL,
        Err(e) => e,
    }
}

fn check_options(options: &JsValue, infill: bool) -> Result<(), JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(());
    }
    let obj = options.dyn_ref::<js_sys::Object>().ok_or_else(|| input_err(None, "options must be an object"))?;
    let known = match serde_json::to_value(SamplerOptions::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect::<Vec<_>>(),
        _ => vec![],
    };
    for key in js_sys::Object::keys(obj).iter().filter_map(|k| k.as_string()) {
        if !known.contains(&key) {
            return Err(input_err(Some(&key), format!("unknown option {key:?}: the options are {}", known.join(", "))));
        }
    }
    let o: SamplerOptions = serde_wasm_bindgen::from_value(options.clone()).map_err(|e| bad_value::<SamplerOptions>("options", options, e))?;
    if infill { o.check_common() } else { o.validate() }.map_err(js_err)
}

/// The page's quantization names: "q4_0", "q8_0", "f16", … and "q4_0_pure" (the embedding and
/// LM head in Q4_0 too).
pub(super) fn parse_quant(quant: Option<&str>) -> Result<Option<Quant>, JsValue> {
    match quant {
        None | Some("") => Ok(None),
        Some(q) => {
            let (name, pure) = q.strip_suffix("_pure").map_or((q, false), |n| (n, true));
            let dtype = DType::parse(name)
                .ok_or_else(|| input_err(Some("quant"), format!("unknown quantization {q:?}: use q4_0, q4_0_pure, q8_0, f16, bf16 or f32")))?;
            Ok(Some(Quant { dtype, pure }))
        }
    }
}
