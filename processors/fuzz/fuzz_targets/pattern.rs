//! Fuzz target for the STIX pattern parser: no input may panic, and every valid pattern's
//! canonical form must parse back to the same tree and reduce the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use processors::intel::pattern::{analyze, parse, reduce};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let report = analyze(input);
    assert_eq!(report.valid, report.error.is_none());
    if let Ok(pattern) = parse(input) {
        let printed = pattern.to_string();
        match parse(&printed) {
            Ok(again) => {
                assert_eq!(
                    pattern, again,
                    "canonical form {printed:?} changed the tree"
                );
                assert_eq!(reduce(&pattern), reduce(&again));
            }
            Err(e) => panic!("canonical form {printed:?} of {input:?} does not parse: {e}"),
        }
    }
});
