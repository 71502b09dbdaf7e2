//! The circuit breaker of a sink. When the sink fails as a whole (connection refused, repeated
//! 5xx/429, auth failure), the circuit opens and the sink's consumer pauses: the backlog stays
//! in Kafka instead of flooding the retry topics. After `open_for`, one probe batch is let
//! through (half-open); success closes the circuit, failure opens it again.

use std::time::{Duration, Instant};

/// Circuit state, exported as the metric `secflow_sink_circuit_state` (0 closed, 1 half-open,
/// 2 open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Requests flow.
    Closed,
    /// One probe is allowed.
    HalfOpen,
    /// Nothing is sent until `until`.
    Open,
}

impl CircuitState {
    /// Metric value.
    pub fn as_metric(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        }
    }
}

/// Settings.
#[derive(Debug, Clone, Copy)]
pub struct CircuitConfig {
    /// Consecutive whole-sink failures that open the circuit.
    pub failure_threshold: u32,
    /// How long it stays open before a probe.
    pub open_for: Duration,
}

/// The breaker.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: CircuitConfig,
    state: CircuitState,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
    /// Why it last opened, for logs and `/readyz`.
    pub last_reason: Option<String>,
    opens: u64,
}

/// What the breaker says about sending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Send.
    Go,
    /// Send this one request as the probe.
    Probe,
    /// Do not send; ask again after this long.
    Wait(Duration),
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(config: CircuitConfig) -> Self {
        Self {
            config,
            state: CircuitState::Closed,
            consecutive_failures: 0,
            opened_at: None,
            probe_in_flight: false,
            last_reason: None,
            opens: 0,
        }
    }

    /// Current state (moving Open → HalfOpen when the open time has passed).
    pub fn state(&mut self, now: Instant) -> CircuitState {
        if self.state == CircuitState::Open
            && self
                .opened_at
                .is_some_and(|t| now.duration_since(t) >= self.config.open_for)
        {
            self.state = CircuitState::HalfOpen;
            self.probe_in_flight = false;
        }
        self.state
    }

    /// May a request be sent now?
    pub fn permit(&mut self, now: Instant) -> Permit {
        match self.state(now) {
            CircuitState::Closed => Permit::Go,
            CircuitState::HalfOpen if !self.probe_in_flight => {
                self.probe_in_flight = true;
                Permit::Probe
            }
            CircuitState::HalfOpen => Permit::Wait(Duration::from_millis(100)),
            CircuitState::Open => {
                let left = self
                    .opened_at
                    .map(|t| self.config.open_for.saturating_sub(now.duration_since(t)))
                    .unwrap_or(self.config.open_for);
                Permit::Wait(left.max(Duration::from_millis(10)))
            }
        }
    }

    /// The sink answered (any per-record outcome counts: the sink is up).
    pub fn record_success(&mut self) {
        self.state = CircuitState::Closed;
        self.consecutive_failures = 0;
        self.opened_at = None;
        self.probe_in_flight = false;
    }

    /// The sink failed as a whole. `immediate` opens at once (e.g. bad credentials).
    pub fn record_failure(&mut self, now: Instant, reason: &str, immediate: bool) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.last_reason = Some(reason.to_string());
        let trip = immediate
            || self.state == CircuitState::HalfOpen
            || self.consecutive_failures >= self.config.failure_threshold;
        if trip {
            if self.state != CircuitState::Open {
                self.opens += 1;
            }
            self.state = CircuitState::Open;
            self.opened_at = Some(now);
            self.probe_in_flight = false;
        }
    }

    /// How many times the circuit opened (closed or half-open → open).
    pub fn opens(&self) -> u64 {
        self.opens
    }

    /// True unless closed.
    pub fn is_open(&mut self, now: Instant) -> bool {
        self.state(now) != CircuitState::Closed
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg() -> CircuitConfig {
        CircuitConfig {
            failure_threshold: 3,
            open_for: Duration::from_secs(5),
        }
    }

    #[test]
    fn opens_after_threshold_then_probes_then_closes() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(cfg());
        c.record_failure(t0, "503", false);
        c.record_failure(t0, "503", false);
        assert_eq!(c.permit(t0), Permit::Go);
        c.record_failure(t0, "503", false);
        assert!(matches!(c.permit(t0), Permit::Wait(_)));
        let later = t0 + Duration::from_secs(6);
        assert_eq!(c.permit(later), Permit::Probe);
        assert!(
            matches!(c.permit(later), Permit::Wait(_)),
            "one probe at a time"
        );
        c.record_success();
        assert_eq!(c.permit(later), Permit::Go);
        assert_eq!(c.state(later), CircuitState::Closed);
    }

    #[test]
    fn failed_probe_reopens_and_auth_failures_open_at_once() {
        let t0 = Instant::now();
        let mut c = CircuitBreaker::new(cfg());
        c.record_failure(t0, "401", true);
        assert_eq!(c.state(t0), CircuitState::Open);
        let later = t0 + Duration::from_secs(6);
        assert_eq!(c.permit(later), Permit::Probe);
        c.record_failure(later, "401", false);
        assert_eq!(c.state(later), CircuitState::Open);
        assert_eq!(c.last_reason.as_deref(), Some("401"));
    }
}
