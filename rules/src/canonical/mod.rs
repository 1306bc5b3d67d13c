//! Canonical bytes for JSON specs: keys sorted at every level, no spaces,
//! so the same spec written with its keys in another order keys the same.

use serde_json::value::RawValue;
use serde_json::Value;

mod direct;

/// A JSON value kept as its canonical text: a tenth of the memory of the
/// `Value` (a layer's steps: ~150 bytes each instead of ~1 KB of maps),
/// and written into a spec's canonical bytes as it is. It serializes as
/// serde_json's raw value: `to_value` parses it back (keys sorted), and
/// [`canonical_of`] copies the text, which is canonical by construction:
/// this type is the only raw value in specs, and every way of making one
/// ([`CanonicalJson::new`], deserializing) canonicalizes.
#[derive(Clone, Debug)]
pub struct CanonicalJson(Box<RawValue>);

impl CanonicalJson {
    /// `v`'s canonical text.
    pub fn new(v: &Value) -> Self {
        let text = String::from_utf8(canonical_json(v)).unwrap_or_default();
        // Canonical JSON is JSON: this cannot fail; null if it ever did.
        CanonicalJson(RawValue::from_string(text).unwrap_or_else(|_| null()))
    }

    /// The canonical text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!("null is JSON"))
}

impl PartialEq for CanonicalJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl serde::Serialize for CanonicalJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

thread_local! {
    /// Set while [`read_own`] runs on this thread.
    static OWN_TEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with every [`CanonicalJson`] it deserializes taken as the
/// text it is, not canonicalized again: for reading back what a spec's
/// `Serialize` wrote (kept under a checksum), whose raw values are this
/// type's canonical text already. Canonicalizing them again was a third
/// of the time a saved plan took to read, for the same text.
pub fn read_own<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            OWN_TEXT.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(OWN_TEXT.with(|c| c.replace(true)));
    f()
}

impl<'de> serde::Deserialize<'de> for CanonicalJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if OWN_TEXT.with(std::cell::Cell::get) {
            return Ok(CanonicalJson(Box::<RawValue>::deserialize(d)?));
        }
        Ok(CanonicalJson::new(&Value::deserialize(d)?))
    }
}

/// Canonical JSON text of any serializable `v`: the bytes
/// `canonical_json(&serde_json::to_value(v))` gives, written without the
/// `Value` where it can be (see [`direct`]).
pub fn canonical_of<T: serde::Serialize + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    if direct::write(v, &mut out).is_ok() {
        return out;
    }
    // Specs are plain data: one that does not become a Value is null, as
    // `NodeSpec::to_json` makes it.
    canonical_json(&serde_json::to_value(v).unwrap_or(Value::Null))
}

/// Canonical JSON text of `v`.
pub fn canonical_json(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(v, &mut out);
    out
}

/// Objects with at most this many keys sort them on the stack.
const SMALL: usize = 16;

fn write(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            // Entries point into the map: sorting references copies
            // nothing (and needs no lookup per key afterwards), and a small
            // object needs no allocation at all.
            let mut small = [("", &Value::Null); SMALL];
            let mut large = Vec::new();
            let entries: &mut [(&str, &Value)] = if map.len() <= SMALL {
                for (slot, (k, v)) in small.iter_mut().zip(map.iter()) {
                    *slot = (k, v);
                }
                &mut small[..map.len()]
            } else {
                large.extend(map.iter().map(|(k, v)| (k.as_str(), v)));
                &mut large
            };
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(k, out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => string(s, out),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Writing a number into a Vec cannot fail.
        Value::Number(n) => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
    }
}

/// A JSON string, escaped as serde_json escapes it, straight into `out`.
fn string(s: &str, out: &mut Vec<u8>) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b = json!({"a": {"x": "s", "y": [1, 2]}, "b": 1});
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            br#"{"a":{"x":"s","y":[1,2]},"b":1}"#.to_vec()
        );
    }

    #[test]
    fn bytes_are_serde_json_compact_with_sorted_keys() {
        // Every scalar and escape is written as serde_json writes it, and a
        // large object sorts its keys too.
        let mut big = serde_json::Map::new();
        for i in (0..40).rev() {
            big.insert(format!("k{i:02}"), json!(i));
        }
        let v = json!({
            "s": "quote \" backslash \\ newline \n tab \t ctrl \u{1} é",
            "n": [0, -1, 1.5, 1e300, u64::MAX, i64::MIN],
            "b": [true, false, null],
            "big": big,
        });
        let mut sorted = v.clone();
        sort(&mut sorted);
        assert_eq!(canonical_json(&v), serde_json::to_vec(&sorted).unwrap());
    }

    /// Sorts every object's keys (a reference for the canonical form).
    fn sort(v: &mut Value) {
        match v {
            Value::Object(map) => {
                let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                for (k, mut item) in entries {
                    sort(&mut item);
                    map.insert(k, item);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(sort),
            _ => {}
        }
    }

    /// Typed data of every shape serde has, the way specs are made.
    #[derive(serde::Serialize)]
    enum Shape {
        Unit,
        New(u8),
        Tuple(i32, String),
        Struct { z: bool, a: Option<String> },
    }

    #[derive(serde::Serialize)]
    struct Typed {
        zeta: Vec<Shape>,
        alpha: std::collections::BTreeMap<u32, f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        none: Option<u8>,
        unit: (),
        chars: (char, char),
        bytes: serde_bytes_like::Bytes,
        nested: Value,
        #[serde(flatten)]
        flat: std::collections::BTreeMap<String, i64>,
        shared: std::sync::Arc<[Value]>,
        kept: std::sync::Arc<[CanonicalJson]>,
        f: f64,
        nan: f64,
    }

    mod serde_bytes_like {
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    fn via_value<T: serde::Serialize>(v: &T) -> Vec<u8> {
        canonical_json(&serde_json::to_value(v).unwrap())
    }

    #[test]
    fn typed_data_writes_the_bytes_its_value_does() {
        let t = Typed {
            zeta: vec![
                Shape::Unit,
                Shape::New(7),
                Shape::Tuple(-3, "q\"uote".into()),
                Shape::Struct { z: true, a: None },
                Shape::Struct {
                    z: false,
                    a: Some("é\u{1}".into()),
                },
            ],
            alpha: [(10, 1.5), (2, -0.0), (3, 1e300)].into_iter().collect(),
            skipped: None,
            none: None,
            unit: (),
            chars: ('x', '"'),
            bytes: serde_bytes_like::Bytes(vec![0, 255]),
            nested: json!({"b": [1, {"y": null, "x": u64::MAX}], "a": i64::MIN, "\"": 1}),
            flat: [("m".to_string(), 1), ("b".to_string(), 2)]
                .into_iter()
                .collect(),
            shared: vec![json!({"k": 1, "a": 2})].into(),
            kept: vec![
                CanonicalJson::new(&json!({"verb": "cmd", "spec": {"z": [1.5, "\n"], "a": null}})),
                CanonicalJson::new(&json!("s")),
            ]
            .into(),
            f: 0.1,
            nan: f64::NAN,
        };
        let mut direct = Vec::new();
        direct::write(&t, &mut direct).expect("every shape is written directly");
        assert_eq!(
            String::from_utf8(direct).unwrap(),
            String::from_utf8(via_value(&t)).unwrap()
        );
    }

    #[test]
    fn kept_json_is_its_canonical_text_and_reads_back_as_its_value() {
        let v = json!({"verb": "copy", "spec": {"to": "/x", "from": "a"}, "arg": "a"});
        let kept = CanonicalJson::new(&v);
        assert_eq!(
            kept.get(),
            r#"{"arg":"a","spec":{"from":"a","to":"/x"},"verb":"copy"}"#
        );
        assert_eq!(serde_json::from_str::<Value>(kept.get()).unwrap(), v);
        assert_eq!(canonical_of(&kept), canonical_json(&v));
        // Read from text that is not canonical, it is made canonical.
        let read: CanonicalJson = serde_json::from_str(r#"{ "b": 1, "a": 2 }"#).unwrap();
        assert_eq!(read.get(), r#"{"a":2,"b":1}"#);
        assert_eq!(read, CanonicalJson::new(&json!({"a": 2, "b": 1})));
    }

    #[test]
    fn what_it_cannot_write_goes_through_a_value() {
        // A key that is not text, a key written twice, a 128-bit number.
        let bool_keys: std::collections::BTreeMap<bool, u8> = [(true, 1)].into_iter().collect();
        let mut out = Vec::new();
        assert!(direct::write(&bool_keys, &mut out).is_err());
        assert_eq!(canonical_of(&bool_keys), via_value(&bool_keys));
        #[derive(serde::Serialize)]
        struct Twice {
            a: u8,
            #[serde(flatten)]
            more: std::collections::BTreeMap<String, u8>,
        }
        let twice = Twice {
            a: 1,
            more: [("a".to_string(), 2)].into_iter().collect(),
        };
        assert!(direct::write(&twice, &mut Vec::new()).is_err());
        assert_eq!(canonical_of(&twice), via_value(&twice));
        assert!(direct::write(&1u128, &mut Vec::new()).is_err());
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("\\PC{0,6}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_json_writes_the_bytes_its_value_does(v in json_value()) {
            let mut direct = Vec::new();
            direct::write(&v, &mut direct).unwrap();
            proptest::prop_assert_eq!(direct, canonical_json(&v));
        }
    }

    #[test]
    fn list_order_does() {
        assert_ne!(
            canonical_json(&json!([1, 2])),
            canonical_json(&json!([2, 1]))
        );
    }
}
