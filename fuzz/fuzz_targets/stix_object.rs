//! Mapping any JSON object a TAXII server could send (`from_stix`) never panics, and what it
//! publishes survives the Avro round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use processors::intel::indicator::{
    from_stix, Indicator, IndicatorDisposition, IndicatorSource, Markings,
};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let source = IndicatorSource {
        server: "fuzz".into(),
        api_root: "https://fuzz.invalid/api1/".into(),
        collection: "c".into(),
    };
    let mut markings = Markings::new();
    markings.learn(&value);
    let d = from_stix(&value, &source, &markings, 1_700_000_000_000);
    if let IndicatorDisposition::Publish(i) = &d {
        assert_eq!(
            Indicator::from_avro_datum(&i.to_avro_datum()).as_ref(),
            Ok(i)
        );
    }
    let _ = d.indicator_record();
    let _ = d.review_record();
});
