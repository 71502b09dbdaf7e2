//! Metrics (`secflow_*`, Prometheus text format) and the health endpoints.
//!
//! One process-wide [`Registry`]: stages count into it with [`count`], [`set_gauge`] and
//! [`observe`]; [`serve`] exposes `/metrics`, `/healthz` and `/readyz` on the metrics listener
//! (`secflow run --metrics-addr`, env `SECFLOW_METRICS_ADDR`, default `0.0.0.0:9464`). The
//! catalog of names, types and help texts is [`CATALOG`] (documented in `docs/metrics.md`); a
//! name outside it is a programming error, caught by a unit test, and counted under
//! `secflow_unknown_metric_total` instead of panicking.
//!
//! A small registry of our own rather than a metrics framework: the text format is simple, the
//! label sets are few, and the stages stay free of exporter plumbing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// What kind of series a metric is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricKind {
    /// Monotonic count.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Distribution over fixed buckets (upper bounds).
    Histogram(&'static [f64]),
}

/// Latency buckets in seconds (delivery: event time → sink acknowledgement).
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// Batch size buckets (records).
const BATCH_BUCKETS: &[f64] = &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0];

/// Every metric secflow exports: name, kind, help.
pub const CATALOG: &[(&str, MetricKind, &str)] = &[
    (
        "secflow_records_in_total",
        MetricKind::Counter,
        "Records read by a stage, by input topic.",
    ),
    (
        "secflow_records_out_total",
        MetricKind::Counter,
        "Records written or delivered by a stage, by output topic or sink.",
    ),
    (
        "secflow_records_failed_total",
        MetricKind::Counter,
        "Records a stage could not process, by reason.",
    ),
    (
        "secflow_delivery_latency_seconds",
        MetricKind::Histogram(LATENCY_BUCKETS),
        "Event time to sink acknowledgement.",
    ),
    (
        "secflow_batch_size",
        MetricKind::Histogram(BATCH_BUCKETS),
        "Records per batch, by stage.",
    ),
    (
        "secflow_sink_requests_total",
        MetricKind::Counter,
        "Requests a sink sent, by status class (2xx, 4xx, 5xx, transport).",
    ),
    (
        "secflow_sink_retries_total",
        MetricKind::Counter,
        "Records retried, in process or through a retry tier.",
    ),
    (
        "secflow_dlq_writes_total",
        MetricKind::Counter,
        "Dead letters written, by stage and reason.",
    ),
    (
        "secflow_sink_suppressed_total",
        MetricKind::Counter,
        "Records finished without a request on purpose (alert dedup, threshold).",
    ),
    (
        "secflow_consumer_lag",
        MetricKind::Gauge,
        "Records between the committed offset and the high watermark.",
    ),
    (
        "secflow_sink_circuit_state",
        MetricKind::Gauge,
        "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
    ),
    (
        "secflow_indicators",
        MetricKind::Gauge,
        "Indicators in the enricher's store.",
    ),
    (
        "secflow_taxii_polls_total",
        MetricKind::Counter,
        "TAXII collection polls, by result.",
    ),
    (
        "secflow_taxii_objects_total",
        MetricKind::Counter,
        "STIX objects read from TAXII, by disposition.",
    ),
    (
        "secflow_build_info",
        MetricKind::Gauge,
        "Always 1; the version label says which build runs.",
    ),
    (
        "secflow_unknown_metric_total",
        MetricKind::Counter,
        "Updates of a metric name missing from the catalog (a bug).",
    ),
];

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone)]
enum Series {
    Value(f64),
    Histogram {
        buckets: Vec<u64>,
        count: u64,
        sum: f64,
    },
}

/// All series of the process.
#[derive(Debug, Default)]
pub struct Registry {
    series: Mutex<BTreeMap<&'static str, BTreeMap<Labels, Series>>>,
    ready: Mutex<BTreeMap<String, bool>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn entry(name: &str) -> Option<(&'static str, MetricKind)> {
    CATALOG
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(n, k, _)| (*n, *k))
}

fn labels(l: &[(&str, &str)]) -> Labels {
    l.iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

impl Registry {
    fn update(&self, name: &str, l: &[(&str, &str)], f: impl FnOnce(MetricKind, &mut Series)) {
        let Some((name, kind)) = entry(name) else {
            let mut all = lock(&self.series);
            let series = all
                .entry("secflow_unknown_metric_total")
                .or_default()
                .entry(labels(&[("name", name)]))
                .or_insert(Series::Value(0.0));
            if let Series::Value(v) = series {
                *v += 1.0;
            }
            return;
        };
        let mut all = lock(&self.series);
        let series = all
            .entry(name)
            .or_default()
            .entry(labels(l))
            .or_insert_with(|| match kind {
                MetricKind::Histogram(b) => Series::Histogram {
                    buckets: vec![0; b.len()],
                    count: 0,
                    sum: 0.0,
                },
                _ => Series::Value(0.0),
            });
        f(kind, series);
    }

    /// Adds `by` to a counter.
    pub fn count(&self, name: &str, l: &[(&str, &str)], by: u64) {
        self.update(name, l, |_, s| {
            if let Series::Value(v) = s {
                *v += by as f64;
            }
        });
    }

    /// Sets a gauge.
    pub fn set_gauge(&self, name: &str, l: &[(&str, &str)], value: f64) {
        self.update(name, l, |_, s| {
            if let Series::Value(v) = s {
                *v = value;
            }
        });
    }

    /// Records one observation of a histogram.
    pub fn observe(&self, name: &str, l: &[(&str, &str)], value: f64) {
        self.update(name, l, |kind, s| {
            if let (
                MetricKind::Histogram(bounds),
                Series::Histogram {
                    buckets,
                    count,
                    sum,
                },
            ) = (kind, s)
            {
                for (b, bound) in buckets.iter_mut().zip(bounds.iter()) {
                    if value <= *bound {
                        *b += 1;
                    }
                }
                *count += 1;
                *sum += value;
            }
        });
    }

    /// The value of a counter or gauge series (tests, summaries).
    pub fn value(&self, name: &str, l: &[(&str, &str)]) -> Option<f64> {
        let all = lock(&self.series);
        match all.get(name)?.get(&labels(l))? {
            Series::Value(v) => Some(*v),
            Series::Histogram { count, .. } => Some(*count as f64),
        }
    }

    /// Marks a stage ready or not (`/readyz` is ready when every registered stage is).
    pub fn set_ready(&self, stage: &str, ready: bool) {
        lock(&self.ready).insert(stage.to_string(), ready);
    }

    /// Whether every stage that registered is ready, and which are not.
    pub fn readiness(&self) -> (bool, Vec<String>) {
        let r = lock(&self.ready);
        let not: Vec<String> = r
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(s, _)| s.clone())
            .collect();
        (!r.is_empty() && not.is_empty(), not)
    }

    /// The Prometheus text exposition (format 0.0.4) of every series.
    pub fn render(&self) -> String {
        let all = lock(&self.series);
        let mut out = String::new();
        for (name, kind, help) in CATALOG {
            let Some(series) = all.get(name) else {
                continue;
            };
            let ty = match kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                MetricKind::Histogram(_) => "histogram",
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {ty}");
            for (l, s) in series {
                match (s, kind) {
                    (Series::Value(v), _) => {
                        let _ = writeln!(out, "{name}{} {}", render_labels(l, None), num(*v));
                    }
                    (
                        Series::Histogram {
                            buckets,
                            count,
                            sum,
                        },
                        MetricKind::Histogram(bounds),
                    ) => {
                        for (b, bound) in buckets.iter().zip(bounds.iter()) {
                            let le = num(*bound);
                            let _ =
                                writeln!(out, "{name}_bucket{} {b}", render_labels(l, Some(&le)));
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            render_labels(l, Some("+Inf"))
                        );
                        let _ = writeln!(out, "{name}_sum{} {}", render_labels(l, None), num(*sum));
                        let _ = writeln!(out, "{name}_count{} {count}", render_labels(l, None));
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn render_labels(l: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The process-wide registry.
pub fn global() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let r = Registry::default();
        r.set_gauge(
            "secflow_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1.0,
        );
        r
    })
}

/// Adds `by` to a counter of the global registry.
pub fn count(name: &str, l: &[(&str, &str)], by: u64) {
    global().count(name, l, by);
}

/// Sets a gauge of the global registry.
pub fn set_gauge(name: &str, l: &[(&str, &str)], value: f64) {
    global().set_gauge(name, l, value);
}

/// Records an observation in a histogram of the global registry.
pub fn observe(name: &str, l: &[(&str, &str)], value: f64) {
    global().observe(name, l, value);
}

/// Marks a stage ready or not in the global registry.
pub fn set_ready(stage: &str, ready: bool) {
    global().set_ready(stage, ready);
}

/// The status class label of an HTTP status (`2xx`…) or a transport failure.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(_) => "5xx",
        None => "transport",
    }
}

/// Why the metrics listener could not start.
#[derive(Debug, thiserror::Error)]
#[error("metrics listener on {addr}: {source}")]
pub struct ServeError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The cause.
    pub source: std::io::Error,
}

/// Binds the metrics listener and serves `/metrics`, `/healthz` and `/readyz` in the
/// background. Returns the bound address (port 0 picks a free one).
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(addr: SocketAddr) -> Result<SocketAddr, ServeError> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError { addr, source })?;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    global().render(),
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|| async {
                let (ready, not) = global().readiness();
                if ready {
                    (StatusCode::OK, "ready\n".to_string()).into_response()
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("not ready: {}\n", not.join(", ")),
                    )
                        .into_response()
                }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(bound)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_in_text_format() {
        let r = Registry::default();
        r.count(
            "secflow_records_in_total",
            &[("stage", "x"), ("topic", "t")],
            3,
        );
        r.count(
            "secflow_records_in_total",
            &[("stage", "x"), ("topic", "t")],
            2,
        );
        r.set_gauge("secflow_sink_circuit_state", &[("sink", "s\"q")], 2.0);
        r.observe("secflow_delivery_latency_seconds", &[("sink", "s")], 0.03);
        r.observe("secflow_delivery_latency_seconds", &[("sink", "s")], 7.0);
        let text = r.render();
        assert!(text.contains("# TYPE secflow_records_in_total counter"));
        assert!(text.contains("secflow_records_in_total{stage=\"x\",topic=\"t\"} 5\n"));
        assert!(text.contains("secflow_sink_circuit_state{sink=\"s\\\"q\"} 2\n"));
        assert!(
            text.contains("secflow_delivery_latency_seconds_bucket{sink=\"s\",le=\"0.05\"} 1\n")
        );
        assert!(text.contains("secflow_delivery_latency_seconds_bucket{sink=\"s\",le=\"10\"} 2\n"));
        assert!(
            text.contains("secflow_delivery_latency_seconds_bucket{sink=\"s\",le=\"+Inf\"} 2\n")
        );
        assert!(text.contains("secflow_delivery_latency_seconds_count{sink=\"s\"} 2\n"));
        assert_eq!(
            r.value(
                "secflow_records_in_total",
                &[("stage", "x"), ("topic", "t")]
            ),
            Some(5.0)
        );
    }

    #[test]
    fn unknown_names_are_counted_not_exported() {
        let r = Registry::default();
        r.count("secflow_typo_total", &[], 1);
        let text = r.render();
        assert!(!text.contains("secflow_typo_total "));
        assert!(text.contains("secflow_unknown_metric_total{name=\"secflow_typo_total\"} 1"));
    }

    #[test]
    fn catalog_matches_the_operator_docs() {
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md"),
        )
        .unwrap();
        for (name, _, _) in CATALOG {
            if *name == "secflow_unknown_metric_total" {
                continue;
            }
            assert!(
                doc.contains(name),
                "docs/metrics.md does not describe {name}"
            );
        }
    }

    #[test]
    fn readiness_needs_every_stage() {
        let r = Registry::default();
        assert!(!r.readiness().0, "nothing registered is not ready");
        r.set_ready("a", true);
        r.set_ready("b", false);
        assert_eq!(r.readiness(), (false, vec!["b".to_string()]));
        r.set_ready("b", true);
        assert!(r.readiness().0);
    }
}
