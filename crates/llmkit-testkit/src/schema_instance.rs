//! Builds a small JSON value that is valid against a JSON Schema, to answer `json_schema` requests.
//!
//! Covered: `type` (single or list), `const`, `enum`, objects (every property, plus `required`
//! keys and `minProperties`), arrays (`items`, `prefixItems`, `minItems`/`maxItems`), strings
//! (`minLength`/`maxLength`, common `format`s), numbers and integers (`minimum`, `maximum`,
//! exclusive bounds, `multipleOf`), `anyOf`/`oneOf` (first branch), `allOf` (merged), and `$ref`
//! to `#`, `#/$defs/..` and `#/definitions/..`. Not covered: `pattern`, `not`, `if`/`then`.

use serde_json::{Map, Number, Value, json};

/// Below this depth, optional structure (one array item) is generated; deeper, only what is
/// required, so that recursive schemas terminate.
const SOFT_DEPTH: usize = 6;
/// A hard stop for pathological schemas (a `$ref` cycle with nothing optional).
const MAX_DEPTH: usize = 32;

/// Returns a value valid against `schema` (for the covered keywords).
pub fn schema_instance(schema: &Value) -> Value {
    Gen { root: schema }.value(schema, 0, 0)
}

struct Gen<'a> {
    root: &'a Value,
}

impl<'a> Gen<'a> {
    /// `salt` varies array items so that `uniqueItems` holds.
    fn value(&self, schema: &Value, depth: usize, salt: u64) -> Value {
        let Some(obj) = schema.as_object() else {
            return Value::Null;
        };
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        if let Some(target) = obj.get("$ref").and_then(Value::as_str)
            && let Some(resolved) = self.resolve(target)
        {
            return self.value(resolved, depth + 1, salt);
        }
        if let Some(c) = obj.get("const") {
            return c.clone();
        }
        if let Some(values) = obj.get("enum").and_then(Value::as_array)
            && !values.is_empty()
        {
            return values[(salt as usize) % values.len()].clone();
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = obj.get(key).and_then(Value::as_array)
                && let Some(branch) = self.pick_branch(branches, depth)
            {
                return self.value(branch, depth + 1, salt);
            }
        }
        if let Some(parts) = obj.get("allOf").and_then(Value::as_array) {
            let merged = self.merge_all_of(obj, parts);
            return self.value(&merged, depth + 1, salt);
        }
        match self.pick_type(obj, depth).as_str() {
            "object" => self.object(obj, depth, salt),
            "array" => self.array(obj, depth),
            "string" => string(obj, salt),
            "integer" => number(obj, true, salt),
            "number" => number(obj, false, salt),
            "boolean" => Value::Bool(true),
            _ => Value::Null,
        }
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        if pointer.is_empty() {
            return Some(self.root);
        }
        self.root.pointer(pointer)
    }

    /// The first branch, except deep in recursion where a branch without `$ref` is preferred.
    fn pick_branch<'b>(&self, branches: &'b [Value], depth: usize) -> Option<&'b Value> {
        if depth >= SOFT_DEPTH {
            let simple = branches
                .iter()
                .find(|b| b.get("type").and_then(Value::as_str) == Some("null"))
                .or_else(|| branches.iter().find(|b| b.get("$ref").is_none()));
            if simple.is_some() {
                return simple;
            }
        }
        branches.first()
    }

    fn pick_type(&self, obj: &Map<String, Value>, depth: usize) -> String {
        match obj.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(types)) => {
                let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
                if depth >= SOFT_DEPTH && names.contains(&"null") {
                    return "null".into();
                }
                names.first().map_or("null", |t| t).to_string()
            }
            _ => infer_type(obj).to_string(),
        }
    }

    fn object(&self, obj: &Map<String, Value>, depth: usize, salt: u64) -> Value {
        let mut out = Map::new();
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (key, sub) in props {
                out.insert(key.clone(), self.value(sub, depth + 1, salt));
            }
        }
        for key in obj
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !out.contains_key(key) {
                out.insert(key.to_string(), Value::String("example".into()));
            }
        }
        let min_props = obj
            .get("minProperties")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let extra = obj.get("additionalProperties");
        if extra != Some(&Value::Bool(false)) {
            let mut i = 0;
            while (out.len() as u64) < min_props {
                let v = extra.map_or(Value::Null, |s| self.value(s, depth + 1, i));
                out.insert(format!("extra_{i}"), v);
                i += 1;
            }
        }
        Value::Object(out)
    }

    fn array(&self, obj: &Map<String, Value>, depth: usize) -> Value {
        let prefix: &[Value] = obj
            .get("prefixItems")
            .or_else(|| obj.get("items").filter(|i| i.is_array()))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let items = obj.get("items").filter(|i| i.is_object());
        let min = obj.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
        let max = obj
            .get("maxItems")
            .and_then(Value::as_u64)
            .map(|m| m as usize);
        let wanted = if depth < SOFT_DEPTH { 1 } else { 0 };
        let mut count = min.max(prefix.len()).max(wanted);
        if items.is_none() && prefix.is_empty() && min == 0 {
            count = 0;
        }
        if let Some(max) = max {
            count = count.min(max);
        }
        let out = (0..count)
            .map(|i| match prefix.get(i) {
                Some(s) => self.value(s, depth + 1, i as u64),
                None => items.map_or(Value::Null, |s| self.value(s, depth + 1, i as u64)),
            })
            .collect();
        Value::Array(out)
    }

    fn merge_all_of(&self, obj: &Map<String, Value>, parts: &[Value]) -> Value {
        let mut merged: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| k.as_str() != "allOf")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for part in parts {
            let part = match part.get("$ref").and_then(Value::as_str) {
                Some(r) => self.resolve(r).unwrap_or(part),
                None => part,
            };
            let Some(part) = part.as_object() else {
                continue;
            };
            for (k, v) in part {
                match (k.as_str(), merged.get_mut(k)) {
                    ("properties", Some(Value::Object(into))) => {
                        if let Value::Object(from) = v {
                            for (pk, pv) in from {
                                into.insert(pk.clone(), pv.clone());
                            }
                        }
                    }
                    ("required", Some(Value::Array(into))) => {
                        if let Value::Array(from) = v {
                            into.extend(from.iter().cloned());
                        }
                    }
                    (_, Some(_)) => {}
                    (_, None) => {
                        merged.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        Value::Object(merged)
    }
}

fn infer_type(obj: &Map<String, Value>) -> &'static str {
    let has = |keys: &[&str]| keys.iter().any(|k| obj.contains_key(*k));
    if has(&[
        "properties",
        "required",
        "additionalProperties",
        "minProperties",
    ]) {
        "object"
    } else if has(&["items", "prefixItems", "minItems", "maxItems"]) {
        "array"
    } else if has(&["minLength", "maxLength", "pattern", "format"]) {
        "string"
    } else if has(&[
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
    ]) {
        "number"
    } else {
        "null"
    }
}

fn string(obj: &Map<String, Value>, salt: u64) -> Value {
    let formatted = obj.get("format").and_then(Value::as_str).and_then(|f| {
        Some(match f {
            "date-time" => "2024-01-01T00:00:00Z",
            "date" => "2024-01-01",
            "time" => "00:00:00Z",
            "duration" => "P1D",
            "email" => "user@example.com",
            "hostname" => "example.com",
            "ipv4" => "127.0.0.1",
            "ipv6" => "::1",
            "uri" | "url" | "iri" => "https://example.com/",
            "uuid" => "00000000-0000-4000-8000-000000000000",
            _ => return None,
        })
    });
    let mut s = match formatted {
        Some(f) => f.to_string(),
        None if salt == 0 => "example".to_string(),
        None => format!("example{salt}"),
    };
    let min = obj.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = obj
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    let len = s.chars().count();
    if len < min {
        s.extend(std::iter::repeat_n('x', min - len));
    }
    if let Some(max) = max {
        s = s.chars().take(max).collect();
    }
    Value::String(s)
}

/// A number within the bounds: 0 (+ salt) when allowed, otherwise the nearest allowed value.
fn number(obj: &Map<String, Value>, integer: bool, salt: u64) -> Value {
    let get = |k: &str| obj.get(k).and_then(Value::as_f64);
    let bool_flag = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
    // Draft 4 spells exclusive bounds as booleans beside minimum/maximum.
    let (mut lo, mut lo_excl) = (get("minimum"), bool_flag("exclusiveMinimum"));
    if let Some(x) = get("exclusiveMinimum") {
        (lo, lo_excl) = (Some(x), true);
    }
    let (mut hi, mut hi_excl) = (get("maximum"), bool_flag("exclusiveMaximum"));
    if let Some(x) = get("exclusiveMaximum") {
        (hi, hi_excl) = (Some(x), true);
    }
    let step = if integer { 1.0 } else { 0.5 };
    let lo_ok = lo.map(|l| {
        if lo_excl {
            next_above(l, integer, step)
        } else {
            l
        }
    });
    let hi_ok = hi.map(|h| {
        if hi_excl {
            next_below(h, integer, step)
        } else {
            h
        }
    });
    let mut v = salt as f64;
    if let Some(l) = lo_ok
        && v < l
    {
        v = l;
    }
    if let Some(h) = hi_ok
        && v > h
    {
        v = h;
    }
    if let (Some(l), Some(h)) = (lo, hi) {
        // When the open interval is narrower than a step, its midpoint is still inside.
        if !integer && (v <= l && lo_excl || v >= h && hi_excl) {
            v = (l + h) / 2.0;
        }
    }
    if let Some(m) = get("multipleOf").filter(|m| *m > 0.0) {
        let up = (v / m).ceil() * m;
        v = if hi_ok.is_none_or(|h| up <= h) {
            up
        } else {
            (v / m).floor() * m
        };
    }
    if integer {
        let i = v.ceil() as i64;
        return Value::Number(i.into());
    }
    Number::from_f64(v).map_or(json!(0), Value::Number)
}

fn next_above(x: f64, integer: bool, step: f64) -> f64 {
    if integer { x.floor() + 1.0 } else { x + step }
}

fn next_below(x: f64, integer: bool, step: f64) -> f64 {
    if integer { x.ceil() - 1.0 } else { x - step }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(schema: &Value) -> Value {
        let v = schema_instance(schema);
        let validator = jsonschema::validator_for(schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{v} invalid for {schema}: {errors:?}");
        v
    }

    #[test]
    fn scalars_and_bounds() {
        assert_eq!(valid(&json!({"type": "string"})), json!("example"));
        assert_eq!(valid(&json!({"type": "integer", "minimum": 5})), json!(5));
        assert_eq!(
            valid(&json!({"type": "integer", "exclusiveMinimum": 5})),
            json!(6)
        );
        assert_eq!(valid(&json!({"type": "integer", "maximum": -3})), json!(-3));
        valid(&json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.1}));
        valid(&json!({"type": "number", "minimum": 0.3, "multipleOf": 0.25}));
        valid(&json!({"type": "integer", "minimum": 7, "maximum": 20, "multipleOf": 5}));
        assert_eq!(valid(&json!({"type": "boolean"})), json!(true));
        assert_eq!(valid(&json!({"type": "null"})), json!(null));
        assert_eq!(valid(&json!({"enum": ["b", "a"]})), json!("b"));
        assert_eq!(valid(&json!({"const": {"k": 1}})), json!({"k": 1}));
        valid(&json!({"type": "string", "minLength": 20, "maxLength": 25}));
        valid(&json!({"type": "string", "maxLength": 3}));
        valid(&json!({"type": ["string", "null"]}));
        valid(&json!({"type": "string", "format": "date-time"}));
    }

    #[test]
    fn objects_arrays_and_refs() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer", "minimum": 18, "maximum": 99},
                "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3, "uniqueItems": true},
                "kind": {"$ref": "#/$defs/kind"},
                "addr": {"$ref": "#/definitions/addr"},
                "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                "one": {"oneOf": [{"type": "null"}, {"type": "string"}]},
                "pair": {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "boolean"}]},
                "both": {"allOf": [{"properties": {"a": {"type": "string"}}, "required": ["a"]},
                                   {"properties": {"b": {"type": "integer"}}, "required": ["b"]}]}
            },
            "required": ["name", "age", "tags", "kind", "addr", "either", "one", "pair", "both"],
            "additionalProperties": false,
            "$defs": {"kind": {"type": "string", "enum": ["x", "y"]}},
            "definitions": {"addr": {"type": "object", "properties": {"city": {"type": "string"}},
                                      "required": ["city"], "additionalProperties": false}}
        });
        let v = valid(&schema);
        assert_eq!(v["tags"].as_array().unwrap().len(), 3);
        assert_eq!(v["kind"], "x");
        assert_eq!(v["both"], json!({"a": "example", "b": 0}));
    }

    #[test]
    fn recursive_schemas_terminate() {
        let tree = json!({
            "$defs": {"node": {"type": "object", "properties": {
                "value": {"type": "integer"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                "required": ["value", "children"], "additionalProperties": false}},
            "$ref": "#/$defs/node"
        });
        valid(&tree);
        let linked = json!({"type": "object", "properties": {
            "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}, "required": ["next"]});
        valid(&linked);
        // A cycle with nothing optional cannot be satisfied; it must still not hang.
        let _ = schema_instance(&json!({"$ref": "#"}));
    }

    #[test]
    fn unusual_inputs_do_not_panic() {
        for s in [
            json!(true),
            json!(false),
            json!(null),
            json!({}),
            json!({"$ref": "#/nope"}),
            json!({"type": 7}),
            json!({"enum": []}),
            json!({"minProperties": 2}),
        ] {
            let _ = schema_instance(&s);
        }
        valid(&json!({"minProperties": 2}));
    }
}
