//! The STIX 2.1 pattern parser and the reduction to atomic IOCs never panic, and their report
//! is consistent: valid ⇔ no error; a valid pattern either reduces to at least one IOC or says
//! why it does not; re-analysing the same text gives the same report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use processors::intel::pattern::analyze;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let report = analyze(text);
    assert_eq!(report.valid, report.error.is_none(), "{report:?}");
    if report.valid {
        assert!(
            report.iocs.as_ref().is_some_and(|i| !i.is_empty()) != report.not_joinable.is_some(),
            "{report:?}"
        );
    } else {
        assert!(
            report.iocs.is_none() && report.not_joinable.is_none(),
            "{report:?}"
        );
    }
    assert_eq!(analyze(text), report);
});
