//! JSON-constrained decoding: a character-level matcher for JSON values that fit a schema
//! (a pushdown automaton over a JSON Schema subset), which masks every next token that
//! would make the output stop being a valid prefix, as llama.cpp's grammars do.
//!
//! The subset: `type` (one or several), `properties` (keys limited to them, `required`
//! enforced before `}`), `additionalProperties`, `items`, `minItems`/`maxItems`, `enum`,
//! `const`, local `$ref`s (`#/$defs/...`, `#/definitions/...`), and `anyOf`/`oneOf`
//! (the first alternative that admits the value's first character), and `minimum`/`maximum`
//! of numbers. String lengths and patterns are not enforced here: the caller validates the
//! finished value.

use serde_json::Value;

/// What a constrained generation must produce.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonConstraint {
    /// Any JSON object (`response_format: json_object`).
    Object,
    /// A JSON value matching this schema (`response_format: json_schema`).
    Schema(Value),
}

/// Any value (the schema `true`).
static ANY: Value = Value::Bool(true);
/// Consecutive whitespace characters allowed outside strings: enough to pretty-print, too
/// few for a small model to loop on newlines.
const MAX_WS_RUN: u8 = 4;
/// Characters allowed in one number.
const MAX_NUMBER: usize = 24;

/// The matcher's state: a stack of what is open, innermost last.
#[derive(Debug, Clone)]
pub(crate) struct Matcher<'s> {
    root: &'s Value,
    stack: Vec<Frame<'s>>,
    /// The top-level value is complete.
    done: bool,
    ws_run: u8,
}

#[derive(Debug, Clone)]
enum Frame<'s> {
    /// A value matching the schema is expected next.
    Value(&'s Value),
    Object {
        schema: &'s Value,
        seen: Vec<String>,
        state: ObjState,
    },
    /// Inside an object key.
    Key { buf: String, escape: bool },
    Array {
        items: &'s Value,
        count: usize,
        /// No item yet.
        open: bool,
        min: usize,
        max: Option<usize>,
    },
    /// Inside a string value.
    Str { escape: u8 },
    Num {
        integer: bool,
        phase: Num,
        /// The number so far.
        text: String,
        /// `minimum`/`maximum`, when the schema gives them.
        min: Option<f64>,
        max: Option<f64>,
    },
    /// One of these JSON texts (enum, const, true/false/null).
    Lit { options: Vec<String>, buf: String },
}

#[derive(Debug, Clone, PartialEq)]
enum ObjState {
    /// After `{`.
    Open,
    /// After `,`: a key must follow.
    Comma,
    /// After a key: `:` must follow.
    Colon(String),
    /// After a value: `,` or `}`.
    Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Start,
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

impl Num {
    fn complete(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::Exp)
    }

    /// The next phase, `None` when `c` cannot continue the number.
    fn step(self, c: char, integer: bool) -> Option<Num> {
        let digit = c.is_ascii_digit();
        Some(match (self, c) {
            (Num::Start, '-') => Num::Minus,
            (Num::Start | Num::Minus, '0') => Num::Zero,
            (Num::Start | Num::Minus, _) if digit => Num::Int,
            (Num::Int, _) if digit => Num::Int,
            (Num::Zero | Num::Int, '.') if !integer => Num::Dot,
            (Num::Dot | Num::Frac, _) if digit => Num::Frac,
            (Num::Zero | Num::Int | Num::Frac, 'e' | 'E') if !integer => Num::E,
            (Num::E, '+' | '-') => Num::ESign,
            (Num::E | Num::ESign | Num::Exp, _) if digit => Num::Exp,
            _ => return None,
        })
    }
}

impl<'s> Matcher<'s> {
    /// A matcher for values of `schema` (which holds any `$ref` targets).
    pub(crate) fn new(schema: &'s Value) -> Self {
        Self {
            root: schema,
            stack: vec![Frame::Value(schema)],
            done: false,
            ws_run: 0,
        }
    }

    /// The complete top-level value has been seen: generation can end.
    pub(crate) fn is_complete(&self) -> bool {
        match self.stack.as_slice() {
            [] => self.done,
            // A number or literal at the top level ends where the text ends.
            [
                Frame::Num {
                    phase,
                    text,
                    min,
                    max,
                    ..
                },
            ] => {
                let v: f64 = text.parse().unwrap_or(f64::NAN);
                phase.complete() && min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m)
            }
            [Frame::Lit { options, buf }] => options.contains(buf),
            _ => false,
        }
    }

    /// Whether `text` can come next; the matcher is unchanged.
    pub(crate) fn accepts(&self, text: &str) -> bool {
        let mut m = self.clone();
        m.feed_str(text)
    }

    /// Feeds `text`; false (leaving the matcher in an unspecified state) when some
    /// character breaks the constraint.
    pub(crate) fn feed_str(&mut self, text: &str) -> bool {
        text.chars().all(|c| self.feed(c))
    }

    fn whitespace(&mut self) -> bool {
        self.ws_run += 1;
        self.ws_run <= MAX_WS_RUN
    }

    fn feed(&mut self, c: char) -> bool {
        let ws = matches!(c, ' ' | '\t' | '\n' | '\r');
        let in_string = matches!(
            self.stack.last(),
            Some(Frame::Str { .. } | Frame::Key { .. })
        );
        if !ws || in_string {
            self.ws_run = 0;
        }
        loop {
            // Inside a key: whether it is limited to declared property names.
            let restricted = matches!(self.stack.last(), Some(Frame::Key { .. }))
                && matches!(
                    self.stack.iter().rev().nth(1),
                    Some(Frame::Object { schema, .. }) if declared(schema).is_some()
                );
            let Some(top) = self.stack.last_mut() else {
                // After the value only whitespace may follow.
                return ws && self.whitespace();
            };
            match top {
                Frame::Value(schema) => {
                    if ws {
                        return self.whitespace();
                    }
                    let schema = *schema;
                    self.stack.pop();
                    return self.start_value(schema, c);
                }
                Frame::Num {
                    integer,
                    phase,
                    text,
                    min,
                    max,
                } => match phase.step(c, *integer) {
                    Some(next) if text.len() < MAX_NUMBER => {
                        let bounded = min.is_some() || max.is_some();
                        if bounded && matches!(next, Num::E) {
                            return false;
                        }
                        if c == '-' && min.is_some_and(|m| m >= 0.0) {
                            return false;
                        }
                        text.push(c);
                        // Digits only make a non-negative number's smallest completion
                        // larger: past the maximum it can never fit.
                        if let (Some(m), Ok(v)) = (*max, text.trim_end_matches('.').parse::<f64>())
                            && !text.starts_with('-')
                            && v > m
                        {
                            return false;
                        }
                        *phase = next;
                        return true;
                    }
                    Some(_) => return false,
                    None if phase.complete() => {
                        let v: f64 = text.parse().unwrap_or(f64::NAN);
                        let fits = min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m);
                        if v.is_nan() || !fits {
                            return false;
                        }
                        self.stack.pop();
                        self.value_done();
                        // `c` belongs to the enclosing value: feed it there.
                    }
                    None => return false,
                },
                Frame::Str { escape } => {
                    return match (*escape, c) {
                        (0, '"') => {
                            self.stack.pop();
                            self.value_done();
                            true
                        }
                        (0, '\\') => {
                            *escape = 1;
                            true
                        }
                        (0, c) => !c.is_control(),
                        (1, 'u') => {
                            *escape = 5;
                            true
                        }
                        (1, '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => {
                            *escape = 0;
                            true
                        }
                        (1, _) => false,
                        (n, c) if c.is_ascii_hexdigit() => {
                            *escape = if n == 2 { 0 } else { n - 1 };
                            true
                        }
                        _ => false,
                    };
                }
                Frame::Key { buf, escape } => {
                    if *escape {
                        // Keys limited to declared names never need an escape.
                        if restricted
                            || !matches!(c, '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't')
                        {
                            return false;
                        }
                        *escape = false;
                        buf.push(c);
                        return true;
                    }
                    if c == '"' {
                        let key = std::mem::take(buf);
                        self.stack.pop();
                        let Some(Frame::Object { schema, state, .. }) = self.stack.last_mut()
                        else {
                            return false;
                        };
                        if !key_allowed(schema, &key) {
                            return false;
                        }
                        *state = ObjState::Colon(key);
                        return true;
                    }
                    if c == '\\' {
                        *escape = true;
                        return !restricted;
                    }
                    if c.is_control() {
                        return false;
                    }
                    buf.push(c);
                    let buf = buf.clone();
                    return match self.stack.iter().rev().nth(1) {
                        Some(Frame::Object { schema, seen, .. }) => key_open(schema, seen, &buf),
                        _ => false,
                    };
                }
                Frame::Lit { options, buf } => {
                    let mut next = buf.clone();
                    next.push(c);
                    if options.iter().any(|o| o.starts_with(&next)) {
                        let exact = options.contains(&next);
                        let longer = options
                            .iter()
                            .any(|o| o.len() > next.len() && o.starts_with(&next));
                        *buf = next;
                        if exact && !longer {
                            self.stack.pop();
                            self.value_done();
                        }
                        return true;
                    }
                    if options.iter().any(|o| o == buf) {
                        self.stack.pop();
                        self.value_done();
                        continue;
                    }
                    return false;
                }
                Frame::Array {
                    items,
                    count,
                    open,
                    min,
                    max,
                } => {
                    if ws {
                        return self.whitespace();
                    }
                    let items = *items;
                    let room = max.is_none_or(|m| *count < m);
                    match c {
                        ']' if *count >= *min => {
                            self.stack.pop();
                            self.value_done();
                            return true;
                        }
                        ',' if !*open && room => {
                            self.stack.push(Frame::Value(items));
                            return true;
                        }
                        ']' | ',' => return false,
                        _ if *open && room => {
                            *open = false;
                            self.stack.push(Frame::Value(items));
                            // `c` starts the first item: fed to it on the next turn.
                        }
                        _ => return false,
                    }
                }
                Frame::Object {
                    schema,
                    seen,
                    state,
                } => {
                    if ws {
                        return self.whitespace();
                    }
                    let schema = *schema;
                    return match (state.clone(), c) {
                        (ObjState::Open | ObjState::Comma, '"') if key_open(schema, seen, "") => {
                            self.stack.push(Frame::Key {
                                buf: String::new(),
                                escape: false,
                            });
                            true
                        }
                        (ObjState::Open | ObjState::Value, '}') if required_seen(schema, seen) => {
                            self.stack.pop();
                            self.value_done();
                            true
                        }
                        (ObjState::Value, ',') if key_open(schema, seen, "") => {
                            *state = ObjState::Comma;
                            true
                        }
                        (ObjState::Colon(key), ':') => {
                            let value = property_schema(schema, &key);
                            seen.push(key);
                            *state = ObjState::Value;
                            self.stack.push(Frame::Value(value));
                            true
                        }
                        _ => false,
                    };
                }
            }
        }
    }

    /// A child value ended: the enclosing frame moves on.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            None => self.done = true,
            Some(Frame::Array { count, .. }) => *count += 1,
            Some(_) => {}
        }
    }

    /// Opens a value of `schema` whose first character is `c`.
    fn start_value(&mut self, schema: &'s Value, c: char) -> bool {
        let schema = resolve(self.root, schema);
        let schema = match alternatives(schema) {
            Some(alts) => match alts
                .iter()
                .map(|a| resolve(self.root, a))
                .find(|a| admits(self.root, a, c))
            {
                Some(a) => a,
                None => return false,
            },
            None => schema,
        };
        if let Some(options) = literal_options(schema) {
            self.stack.push(Frame::Lit {
                options,
                buf: String::new(),
            });
            return self.feed(c);
        }
        if !admits(self.root, schema, c) {
            return false;
        }
        match c {
            '{' => self.stack.push(Frame::Object {
                schema,
                seen: Vec::new(),
                state: ObjState::Open,
            }),
            '[' => {
                let bound = |k: &str| schema.get(k).and_then(Value::as_u64).map(|n| n as usize);
                self.stack.push(Frame::Array {
                    items: schema.get("items").unwrap_or(&ANY),
                    count: 0,
                    open: true,
                    min: bound("minItems").unwrap_or(0),
                    max: bound("maxItems"),
                });
            }
            '"' => self.stack.push(Frame::Str { escape: 0 }),
            't' | 'f' => {
                self.stack.push(Frame::Lit {
                    options: vec!["true".into(), "false".into()],
                    buf: String::new(),
                });
                return self.feed(c);
            }
            'n' => {
                self.stack.push(Frame::Lit {
                    options: vec!["null".into()],
                    buf: String::new(),
                });
                return self.feed(c);
            }
            _ => {
                let integer = types(schema).is_some_and(|t| !t.contains(&"number"));
                let bound = |k: &str| schema.get(k).and_then(Value::as_f64);
                self.stack.push(Frame::Num {
                    integer,
                    phase: Num::Start,
                    text: String::new(),
                    min: bound("minimum"),
                    max: bound("maximum"),
                });
                return self.feed(c);
            }
        }
        true
    }
}

/// Follows a local `$ref` (`#/$defs/Name`, `#/definitions/Name`, or any `#/a/b` path).
fn resolve<'s>(root: &'s Value, schema: &'s Value) -> &'s Value {
    let mut s = schema;
    for _ in 0..16 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(t) => s = t,
                None => return &ANY,
            },
            None => return s,
        }
    }
    &ANY
}

fn alternatives(schema: &Value) -> Option<&Vec<Value>> {
    schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
}

/// The JSON texts an `enum` or `const` allows.
fn literal_options(schema: &Value) -> Option<Vec<String>> {
    if let Some(c) = schema.get("const") {
        return Some(vec![c.to_string()]);
    }
    schema
        .get("enum")
        .and_then(Value::as_array)
        .map(|e| e.iter().map(Value::to_string).collect())
}

/// The schema's `type` list, `None` when it names none.
fn types(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(t) => Some(vec![t.as_str()]),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// Whether a value of `schema` may start with `c`.
fn admits(root: &Value, schema: &Value, c: char) -> bool {
    let schema = resolve(root, schema);
    if matches!(schema, Value::Bool(false)) {
        return false;
    }
    if let Some(alts) = alternatives(schema) {
        return alts.iter().any(|a| admits(root, a, c));
    }
    if let Some(options) = literal_options(schema) {
        return options.iter().any(|o| o.starts_with(c));
    }
    let kind = match c {
        '{' => "object",
        '[' => "array",
        '"' => "string",
        't' | 'f' => "boolean",
        'n' => "null",
        '-' | '0'..='9' => "number",
        _ => return false,
    };
    match types(schema) {
        Some(ts) => ts
            .iter()
            .any(|t| *t == kind || (kind == "number" && *t == "integer")),
        // No type: inferred from the keywords, else anything.
        None if schema.get("properties").is_some() => kind == "object",
        None if schema.get("items").is_some() => kind == "array",
        None => true,
    }
}

/// The object's declared properties, when it restricts its keys to them.
fn declared(schema: &Value) -> Option<&serde_json::Map<String, Value>> {
    schema.get("properties").and_then(Value::as_object)
}

/// Whether some key not yet seen can start with `prefix`.
fn key_open(schema: &Value, seen: &[String], prefix: &str) -> bool {
    match declared(schema) {
        Some(props) => props
            .keys()
            .any(|k| !seen.contains(k) && k.starts_with(prefix)),
        None => !matches!(schema.get("additionalProperties"), Some(Value::Bool(false))),
    }
}

/// Whether `key` (complete) is allowed.
fn key_allowed(schema: &Value, key: &str) -> bool {
    match declared(schema) {
        Some(props) => props.contains_key(key),
        None => !matches!(schema.get("additionalProperties"), Some(Value::Bool(false))),
    }
}

fn required_seen(schema: &Value, seen: &[String]) -> bool {
    schema
        .get("required")
        .and_then(Value::as_array)
        .is_none_or(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .all(|k| seen.iter().any(|s| s == k))
        })
}

/// The schema of property `key`'s value.
fn property_schema<'s>(schema: &'s Value, key: &str) -> &'s Value {
    if let Some(p) = declared(schema).and_then(|p| p.get(key)) {
        return p;
    }
    match schema.get("additionalProperties") {
        Some(v @ Value::Object(_)) => v,
        _ => &ANY,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn full(schema: &Value, text: &str) -> bool {
        let mut m = Matcher::new(schema);
        m.feed_str(text) && m.is_complete()
    }

    fn prefix(schema: &Value, text: &str) -> bool {
        Matcher::new(schema).accepts(text)
    }

    fn sentiment() -> Value {
        json!({
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                "score": {"type": "number"},
                "reasons": {"type": "array", "items": {"type": "string"}, "maxItems": 2}
            },
            "required": ["label", "score"],
            "additionalProperties": false
        })
    }

    #[test]
    fn objects_follow_their_schema() {
        let s = sentiment();
        assert!(full(&s, r#"{"label": "positive", "score": 0.9}"#));
        assert!(full(
            &s,
            "{\n  \"score\": -1e-3,\n  \"label\":\"neutral\", \"reasons\": [\"a\", \"b\\\"c\"]\n}"
        ));
        assert!(prefix(&s, r#"{"lab"#));
        assert!(prefix(&s, r#"{"label": "pos"#));
        // Unknown key, value outside the enum, missing required key, repeated key, an
        // escape in a declared key.
        assert!(!prefix(&s, r#"{"x"#));
        assert!(!prefix(&s, r#"{"s\"#));
        assert!(full(&json!({"type": "object"}), r#"{"a\"b": 1}"#));
        assert!(!prefix(&s, r#"{"label": "happy"#));
        assert!(!prefix(&s, r#"{"label": "positive"}"#));
        assert!(!prefix(&s, r#"{"label": "positive", "label""#));
        // Wrong types, too many items, text after the value.
        assert!(!prefix(&s, r#"{"score": "high"#));
        assert!(!prefix(
            &s,
            r#"{"label": "neutral", "score": 1, "reasons": ["a", "b", "c"#
        ));
        assert!(!prefix(&s, r#"{"label": "neutral", "score": 1} x"#));
        // Not complete before the closing brace.
        let mut m = Matcher::new(&s);
        assert!(m.feed_str(r#"{"label": "neutral", "score": 1"#));
        assert!(!m.is_complete());
        assert!(m.feed_str("}"));
        assert!(m.is_complete());
    }

    #[test]
    fn numbers_literals_and_refs() {
        let int = json!({"type": "integer"});
        assert!(full(&int, "-42"));
        assert!(!prefix(&int, "4.2"));
        assert!(!prefix(&json!({"type": "number"}), "01"));
        let unit = json!({"type": "number", "minimum": 0, "maximum": 1});
        assert!(full(&unit, "0.75") && full(&unit, "1") && full(&unit, "1.0"));
        assert!(!prefix(&unit, "2") && !prefix(&unit, "-") && !prefix(&unit, "1.5"));
        assert!(!prefix(&unit, "1e"));
        let obj = json!({"type": "object", "properties": {"s": unit}, "required": ["s"]});
        assert!(full(&obj, r#"{"s": 0.5}"#));
        assert!(!prefix(&obj, r#"{"s": 1.01"#));
        assert!(full(&json!({"type": "boolean"}), "false"));
        assert!(!prefix(&json!({"type": "boolean"}), "nul"));
        let nullable = json!({"anyOf": [{"type": "string"}, {"type": "null"}]});
        assert!(full(&nullable, "null") && full(&nullable, "\"x\""));
        let refd = json!({
            "type": "object",
            "properties": {"p": {"$ref": "#/$defs/point"}},
            "required": ["p"],
            "$defs": {"point": {"type": "array", "items": {"type": "integer"}, "minItems": 2}}
        });
        assert!(full(&refd, r#"{"p": [1, 2]}"#));
        assert!(!prefix(&refd, r#"{"p": [1]}"#));
        let obj = json!({"type": "object"});
        assert!(full(&obj, r#"{"any": {"thing": [1, true, null]}}"#));
        assert!(!prefix(&obj, "[1]"));
        let en = json!({"enum": [1, 10, "a"]});
        assert!(full(&en, "10") && full(&en, "1") && full(&en, "\"a\""));
        assert!(!prefix(&en, "2"));
    }

    #[test]
    fn whitespace_runs_are_bounded() {
        let obj = json!({"type": "object"});
        assert!(prefix(&obj, "{    "));
        assert!(!prefix(&obj, "{\n\n\n\n\n"));
        assert!(prefix(&obj, "{\"k\": \"     many spaces inside     \""));
    }
}
