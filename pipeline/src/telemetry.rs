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
//!
//! Traces: [`init_traces`] installs an OpenTelemetry tracer that exports with OTLP over HTTP
//! (protobuf) when the topology's `telemetry` section or the `OTEL_*` environment names a
//! receiver ([`TraceSettings::resolve`]); it is off otherwise. Each stage wraps a record in a
//! [`RecordSpan`] whose parent is the record's W3C `traceparent` header and whose own context
//! replaces that header on the way out, so one trace follows an event from `secflow produce`
//! through enrich and transform to the sink's request. With traces off a [`RecordSpan`] is
//! empty and costs nothing; the `traceparent` is then carried through unchanged.

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
        "Indicators in the enrich stage's table.",
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
        "secflow_taxii_retries_total",
        MetricKind::Counter,
        "TAXII requests retried after a transient failure.",
    ),
    (
        "secflow_enrich_matched_total",
        MetricKind::Counter,
        "Events the enrich stage gave at least one new enrichment.",
    ),
    (
        "secflow_enrich_matches_total",
        MetricKind::Counter,
        "Enrichments (indicator matches) the enrich stage added to events.",
    ),
    (
        "secflow_trace_exports_total",
        MetricKind::Counter,
        "OTLP span export requests, by result.",
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

fn same_labels(have: &Labels, want: &[(&str, &str)]) -> bool {
    have.len() == want.len()
        && have
            .iter()
            .zip(want)
            .all(|((k, v), (wk, wv))| k == wk && v == wv)
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
        let metric = all.entry(name).or_default();
        // Stages update metrics per record: an existing series is found without building its
        // label strings (a metric has a handful of series, so the scan is short).
        if let Some((_, series)) = metric.iter_mut().find(|(k, _)| same_labels(k, l)) {
            f(kind, series);
            return;
        }
        let series = metric.entry(labels(l)).or_insert_with(|| match kind {
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

// ---------------------------------------------------------------------------------------------
// Traces

pub use opentelemetry::trace::SpanKind;
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry::KeyValue;

/// The W3C trace context header.
const TRACEPARENT: &str = "traceparent";

/// Where a process sends its spans, resolved from the topology's `telemetry` section and the
/// standard `OTEL_*` environment.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The URL spans are posted to (`…/v1/traces`).
    pub endpoint: String,
    /// The resource's `service.name`.
    pub service_name: String,
    /// Fraction of new traces kept.
    pub sample_ratio: f64,
}

impl TraceSettings {
    /// The settings, or `None` when traces are off: no endpoint in the file nor in
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`, or
    /// `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`. `env` reads a variable (the
    /// process environment in `secflow`, a map in tests).
    pub fn resolve(
        config: &crate::topology::TelemetryConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<TraceSettings> {
        let var = |k: &str| {
            env(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return None;
        }
        // The base URL gets the signal path, as the OTLP exporter specification says; the
        // per-signal variable is used as it is.
        let traces_url = |base: &str| format!("{}/v1/traces", base.trim_end_matches('/'));
        let configured = config
            .otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let endpoint = match configured {
            Some(base) => traces_url(base),
            None => match var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
                Some(url) => url,
                None => traces_url(&var("OTEL_EXPORTER_OTLP_ENDPOINT")?),
            },
        };
        let service_name = config
            .service_name
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| var("OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| "secflow".to_string());
        Some(TraceSettings {
            endpoint,
            service_name,
            sample_ratio: config.sample_ratio.clamp(0.0, 1.0),
        })
    }
}

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TraceInitError {
    /// Tracing is set up once per process.
    #[error("traces are already set up in this process")]
    AlreadySet,
    /// The export runs on the tokio runtime of the caller.
    #[error("traces need a tokio runtime: {0}")]
    NoRuntime(String),
    /// The HTTP client or the OTLP exporter could not be built.
    #[error("OTLP exporter for {endpoint}: {message}")]
    Exporter {
        /// The URL.
        endpoint: String,
        /// Why.
        message: String,
    },
}

static TRACER: OnceLock<opentelemetry_sdk::trace::SdkTracer> = OnceLock::new();

/// Whether this process exports spans.
pub fn traces_enabled() -> bool {
    TRACER.get().is_some()
}

/// The tracer provider of a process; [`Tracing::shutdown`] exports what is still queued.
#[derive(Debug)]
pub struct Tracing {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
    endpoint: String,
}

impl Tracing {
    /// The URL spans go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Exports the spans still queued (waits at most 10 s) and stops the exporter.
    pub async fn shutdown(self) {
        let provider = self.provider;
        let done = tokio::task::spawn_blocking(move || {
            provider.shutdown_with_timeout(std::time::Duration::from_secs(10))
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "flushing the last spans failed"),
            Err(e) => tracing::warn!(error = %e, "flushing the last spans failed"),
        }
    }
}

/// The OTLP exporter's HTTP client: our reqwest client, run on the process's tokio runtime
/// (the SDK's batch processor calls it from its own thread). Counts every export in
/// `secflow_trace_exports_total`.
#[derive(Debug)]
struct ExportClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

type ExportResult =
    Result<opentelemetry_http::Response<opentelemetry_http::Bytes>, opentelemetry_http::HttpError>;

impl opentelemetry_http::HttpClient for ExportClient {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: opentelemetry_http::Request<opentelemetry_http::Bytes>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ExportResult> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let http = self.http.clone();
        let runtime = self.runtime.clone();
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)?;
            let task = runtime.spawn(async move {
                let resp = http.execute(request).await?;
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = resp.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, body))
            });
            match task.await? {
                Ok((status, headers, body)) => {
                    count(
                        "secflow_trace_exports_total",
                        &[("result", status_class(Some(status.as_u16())))],
                        1,
                    );
                    let mut resp = opentelemetry_http::Response::new(body);
                    *resp.status_mut() = status;
                    *resp.headers_mut() = headers;
                    Ok(resp)
                }
                Err(e) => {
                    count(
                        "secflow_trace_exports_total",
                        &[("result", status_class(None))],
                        1,
                    );
                    Err(Box::new(e) as opentelemetry_http::HttpError)
                }
            }
        })
    }
}

/// Starts exporting spans as `settings` say. Call once per process, inside the tokio runtime;
/// keep the returned [`Tracing`] and [`Tracing::shutdown`] it before the process ends.
///
/// # Errors
/// Already set up, no tokio runtime, or the exporter cannot be built (bad URL).
pub fn init_traces(settings: &TraceSettings) -> Result<Tracing, TraceInitError> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};

    if traces_enabled() {
        return Err(TraceInitError::AlreadySet);
    }
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| TraceInitError::NoRuntime(e.to_string()))?;
    let exporter_err = |message: String| TraceInitError::Exporter {
        endpoint: settings.endpoint.clone(),
        message,
    };
    if let Ok(p) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL") {
        if !p.trim().is_empty() && p.trim() != "http/protobuf" {
            tracing::warn!(protocol = %p, "OTEL_EXPORTER_OTLP_PROTOCOL: secflow exports http/protobuf only (OTLP over HTTP, port 4318 on a collector)");
        }
    }
    let timeout = std::time::Duration::from_secs(10);
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| exporter_err(e.to_string()))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(ExportClient { http, runtime })
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(timeout)
        .build()
        .map_err(|e| exporter_err(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch_config(|k| std::env::var(k).ok()))
                .build(),
        )
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("secflow");
    TRACER.set(tracer).map_err(|_| TraceInitError::AlreadySet)?;
    Ok(Tracing {
        provider,
        endpoint: settings.endpoint.clone(),
    })
}

/// The span context a W3C `traceparent` names, checked strictly (version 2 hex digits and not
/// `ff`; trace id 32 and span id 16 lowercase hex digits, neither all zero; flags 2 hex digits;
/// exactly four fields for version `00`). Only the sampled flag is kept.
fn parse_traceparent(tp: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let parts: Vec<&str> = tp.trim().split('-').collect();
    let (version, trace, span, flags) = (
        *parts.first()?,
        *parts.get(1)?,
        *parts.get(2)?,
        *parts.get(3)?,
    );
    if !hex(version, 2) || version == "ff" || (version == "00" && parts.len() != 4) {
        return None;
    }
    if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?) & TraceFlags::SAMPLED;
    let sc = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    sc.is_valid().then_some(sc)
}

/// Span batching: the SDK's defaults (a queue of 2,048 spans, flushed every 5 s) drop spans
/// above about 400 a second, and secflow makes one span per record and stage, so its defaults
/// are a queue of 16,384 spans flushed every second in requests of at most 2,048 spans (about
/// 16 MB of queued spans at most). An `OTEL_BSP_*` variable that is set wins over these.
fn batch_config(env: impl Fn(&str) -> Option<String>) -> opentelemetry_sdk::trace::BatchConfig {
    let mut b = opentelemetry_sdk::trace::BatchConfigBuilder::default();
    if env("OTEL_BSP_MAX_QUEUE_SIZE").is_none() {
        b = b.with_max_queue_size(16_384);
    }
    if env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE").is_none() {
        b = b.with_max_export_batch_size(2_048);
    }
    if env("OTEL_BSP_SCHEDULE_DELAY").is_none() {
        b = b.with_scheduled_delay(std::time::Duration::from_secs(1));
    }
    b.build()
}

/// The parent context a `traceparent` names (an empty context when it is absent or invalid:
/// the span then starts a trace).
fn parent_context(traceparent: Option<&str>) -> opentelemetry::Context {
    use opentelemetry::trace::TraceContextExt as _;
    let empty = opentelemetry::Context::new();
    match traceparent.and_then(parse_traceparent) {
        Some(sc) => empty.with_remote_span_context(sc),
        None => empty,
    }
}

/// The `traceparent` of a record (the first header of that name, when it is UTF-8).
pub fn record_traceparent<M: rdkafka::message::Message>(m: &M) -> Option<&str> {
    use rdkafka::message::Headers as _;
    m.headers()?
        .iter()
        .find(|h| h.key == TRACEPARENT)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

#[derive(Debug)]
struct SpanInner {
    span: Mutex<opentelemetry_sdk::trace::Span>,
    traceparent: String,
}

/// The span of one record in one stage. Empty (and free) when traces are off. Clones share the
/// span, which ends when the last clone is dropped: keep it until the record is finished
/// (written and acknowledged, delivered, or dead-lettered).
#[derive(Debug, Clone, Default)]
pub struct RecordSpan(Option<std::sync::Arc<SpanInner>>);

impl RecordSpan {
    /// The span of a record read from Kafka: the child of its `traceparent` (a new trace when
    /// it has none), with the messaging attributes of the record and the stage's name.
    pub fn consumed<M: rdkafka::message::Message>(
        name: &'static str,
        kind: SpanKind,
        stage: &str,
        m: &M,
    ) -> RecordSpan {
        if !traces_enabled() {
            return RecordSpan(None);
        }
        let attributes = vec![
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.destination.name", m.topic().to_string()),
            KeyValue::new(
                "messaging.destination.partition.id",
                m.partition().to_string(),
            ),
            KeyValue::new("messaging.kafka.offset", m.offset()),
            KeyValue::new("secflow.stage", stage.to_string()),
        ];
        Self::start(name, kind, record_traceparent(m), attributes)
    }

    /// The span of a record a producer sends to `topic`: a new trace.
    pub fn produced(name: &'static str, topic: &str) -> RecordSpan {
        if !traces_enabled() {
            return RecordSpan(None);
        }
        let attributes = vec![
            KeyValue::new("messaging.system", "kafka"),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.destination.name", topic.to_string()),
        ];
        Self::start(name, SpanKind::Producer, None, attributes)
    }

    fn start(
        name: &'static str,
        kind: SpanKind,
        parent: Option<&str>,
        attributes: Vec<KeyValue>,
    ) -> RecordSpan {
        let Some(tracer) = TRACER.get() else {
            return RecordSpan(None);
        };
        let cx = parent_context(parent);
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, &cx);
        let sc = span.span_context().clone();
        if !sc.is_valid() {
            return RecordSpan(None);
        }
        let traceparent = format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        );
        RecordSpan(Some(std::sync::Arc::new(SpanInner {
            span: Mutex::new(span),
            traceparent,
        })))
    }

    /// The `traceparent` naming this span, for the record's outgoing header or request;
    /// `None` when traces are off (the incoming header then goes on unchanged).
    pub fn traceparent(&self) -> Option<&str> {
        self.0.as_ref().map(|i| i.traceparent.as_str())
    }

    /// Adds an attribute.
    pub fn set_attribute(&self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        if let Some(i) = &self.0 {
            lock(&i.span).set_attribute(KeyValue::new(key, value));
        }
    }

    /// Marks the span failed (dead-lettered, refused): `class` is the error class.
    pub fn fail(&self, class: &str) {
        if let Some(i) = &self.0 {
            let mut span = lock(&i.span);
            span.set_attribute(KeyValue::new("error.type", class.to_string()));
            span.set_status(opentelemetry::trace::Status::error(class.to_string()));
        }
    }
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

    #[test]
    fn trace_settings_come_from_the_file_then_the_environment() {
        use crate::topology::TelemetryConfig;
        use std::collections::HashMap;
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| m.get(k).cloned()
        };
        let off = TelemetryConfig::default();
        assert_eq!(
            TraceSettings::resolve(&off, env(&[])),
            None,
            "off by default"
        );
        let s = TraceSettings::resolve(
            &off,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
                ("OTEL_SERVICE_NAME", "secflow-sinks"),
            ]),
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(s.service_name, "secflow-sinks");
        assert_eq!(s.sample_ratio, 1.0);
        let s = TraceSettings::resolve(
            &off,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://other:9999/traces",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://other:9999/traces");
        assert_eq!(s.service_name, "secflow");
        let file = TelemetryConfig {
            otlp_endpoint: Some("http://file:4318".into()),
            service_name: Some("from-file".into()),
            sample_ratio: 0.5,
        };
        let s = TraceSettings::resolve(
            &file,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_SERVICE_NAME", "env"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.service_name.as_str(), s.sample_ratio),
            ("http://file:4318/v1/traces", "from-file", 0.5)
        );
        assert_eq!(
            TraceSettings::resolve(&file, env(&[("OTEL_SDK_DISABLED", "true")])),
            None
        );
        assert_eq!(
            TraceSettings::resolve(&file, env(&[("OTEL_TRACES_EXPORTER", "none")])),
            None
        );
    }

    #[test]
    fn spans_are_empty_and_free_when_traces_are_off() {
        // No test of this binary sets traces up.
        let s = RecordSpan::produced("secflow.produce", "t");
        assert_eq!(s.traceparent(), None);
        s.fail("x");
        assert!(!traces_enabled());
    }

    #[test]
    fn parent_context_reads_a_w3c_traceparent() {
        use opentelemetry::trace::TraceContextExt as _;
        let cx = parent_context(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        let sc = cx.span().span_context().clone();
        assert!(sc.is_valid() && sc.is_remote() && sc.is_sampled());
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        let unsampled = parent_context(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        ));
        assert!(!unsampled.span().span_context().is_sampled());
        // A later version may add fields.
        let v1 = parent_context(Some(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ));
        assert!(v1.span().span_context().is_valid());
        for bad in [
            "00-abc-def-01",
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let cx = parent_context(Some(bad));
            assert!(!cx.span().span_context().is_valid(), "{bad}");
        }
    }
}
