//! `Params::parse`: query strings and form bodies. Never panics; what it
//! accepts holds to its documented bounds and survives re-encoding.
#![no_main]

use clef::domain::Params;
use libfuzzer_sys::fuzz_target;

/// `application/x-www-form-urlencoded` for any name and value (WHATWG URL):
/// alphanumerics and `*-._` kept, space as `+`, every other byte escaped.
fn encode(raw: &str) -> String {
    let mut out = String::new();
    for b in raw.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The parameters as owned pairs, in their order.
fn owned_pairs(params: &Params) -> Vec<(String, String)> {
    params
        .pairs()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let params = match Params::parse(data) {
        Ok(params) => params,
        Err(error) => {
            // What a client reads back is English, printable ASCII.
            let wire = error.wire_description();
            assert!(wire.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{wire:?}");
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    let mut pairs = owned_pairs(&params);
    assert!(pairs.len() <= 64, "{} parameters", pairs.len());
    for (name, value) in &pairs {
        assert!(name.len() <= 64, "name {name:?}");
        assert!(!name.chars().any(char::is_control), "name {name:?}");
        assert!(value.chars().count() <= Params::MAX_VALUE);
        assert!(!value.chars().any(char::is_control), "value {value:?}");
        // An empty value counts as absent.
        assert_eq!(
            params.get(name),
            Some(value.as_str()).filter(|v| !v.is_empty())
        );
        assert_eq!(params.contains(name), !value.is_empty());
    }
    // Encoded again, the same parameters come back.
    let encoded = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let again = Params::parse(encoded.as_bytes()).expect("re-encoded parameters parse");
    let mut again_pairs = owned_pairs(&again);
    pairs.sort();
    again_pairs.sort();
    assert_eq!(pairs, again_pairs, "re-encoded as {encoded:?}");
    // Parameters decoded elsewhere are held to the same bounds: these pass.
    let from_pairs = Params::from_pairs(pairs.clone()).expect("from_pairs takes what parse took");
    let mut from_pairs = owned_pairs(&from_pairs);
    from_pairs.sort();
    assert_eq!(pairs, from_pairs);
});
