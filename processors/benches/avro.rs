//! Avro encode / decode of canonical events (plain datum, no Confluent framing).
//!
//! `encode` is `SecurityEvent::to_avro_datum` (validate + hand-written encoder), `decode` is
//! `SecurityEvent::from_avro_datum` (hand-written decoder + validate). For comparison,
//! `decode_apache_generic` decodes the same bytes with `apache-avro`'s generic reader into a
//! `Value` and converts that (`from_avro_value`), which is what the serde route would cost.
//!
//! Run: `cargo bench -p processors --bench avro -- --quick`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use apache_avro::reader::datum::GenericDatumReader;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use processors::event::{schema, SecurityEvent};

fn load(name: &str) -> SecurityEvent {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/examples")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    SecurityEvent::from_json(&text).unwrap()
}

fn bench_avro(c: &mut Criterion) {
    for (label, file) in [
        ("network_event", "network_connection_ipv4.json"),
        ("enriched_alert", "process_alert_enriched.json"),
    ] {
        let event = load(file);
        let bytes = event.to_avro_datum().unwrap();
        let mut group = c.benchmark_group(format!("avro/{label}_{}B", bytes.len()));
        group.throughput(Throughput::Elements(1));
        group.bench_function("encode", |b| {
            b.iter(|| black_box(&event).to_avro_datum().unwrap())
        });
        group.bench_function("decode", |b| {
            b.iter(|| SecurityEvent::from_avro_datum(black_box(&bytes)).unwrap())
        });
        let reader = GenericDatumReader::builder(schema()).build().unwrap();
        group.bench_function("decode_apache_generic", |b| {
            b.iter(|| {
                let mut input = black_box(bytes.as_slice());
                let value = reader.read_value(&mut input).unwrap();
                SecurityEvent::from_avro_value(value).unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_avro);
criterion_main!(benches);
