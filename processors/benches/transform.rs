//! Transform throughput: canonical Avro bytes → ECS JSON / CEF line / OCSF JSON, one core.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use processors::event::SecurityEvent;
use processors::transform::Format;

fn examples() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/examples");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let e = SecurityEvent::from_json(&std::fs::read_to_string(p).unwrap()).unwrap();
            e.to_avro_datum().unwrap()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let datums = examples();
    for format in Format::ALL {
        if datums.iter().any(|d| {
            format
                .transform(&SecurityEvent::from_avro_datum(d).unwrap())
                .is_err()
        }) {
            continue; // format not implemented for every example yet
        }
        let mut group = c.benchmark_group(format!("avro_to_{}", format.as_str()));
        group.throughput(Throughput::Elements(datums.len() as u64));
        group.bench_function("all_examples", |b| {
            b.iter(|| {
                for d in &datums {
                    let e = SecurityEvent::from_avro_datum(d).unwrap();
                    std::hint::black_box(format.transform(&e).unwrap());
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
