//! Canonical bytes for JSON specs: keys sorted at every level, no spaces,
//! so the same spec written with its keys in another order keys the same.

use serde_json::Value;

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

    #[test]
    fn list_order_does() {
        assert_ne!(
            canonical_json(&json!([1, 2])),
            canonical_json(&json!([2, 1]))
        );
    }
}
