//! Decoding arbitrary bytes as an indicator record (what the enricher reads from the topic)
//! never panics; whatever decodes survives a re-encode and decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use processors::intel::indicator::Indicator;

fuzz_target!(|data: &[u8]| {
    if let Ok(i) = Indicator::from_avro_datum(data) {
        assert_eq!(
            Indicator::from_avro_datum(&i.to_avro_datum()).as_ref(),
            Ok(&i)
        );
    }
});
