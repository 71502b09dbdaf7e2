//! Splunk HTTP Event Collector: JSON event batches to `/services/collector/event`, indexer
//! acknowledgements, channel reset on a load balancer cookie change, health probe.
//!
//! Protocol state kept by the sink (behind a mutex, never across I/O): the channel GUID
//! (`X-Splunk-Request-Channel`, random per sink instance) and the cookies the load balancer set.
//! When a cookie we hold changes value (the load balancer moved us to another indexer), the
//! ackIds issued on the old channel can never be acknowledged: the sink starts a new channel and
//! reports [`crate::sink::AckReset`] with the old one; the engine re-sends those
//! records. A request whose `ackId` came back on a channel that was reset meanwhile is retried
//! (class `hec_channel_reset`).

mod config;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

pub use config::{HecAckConfig, HecConfig};
pub use request::{
    encode_event, format_time, ACK_PATH, CHANNEL_HEADER, EVENT_PATH, HEALTH_PATH, MAX_ACKS_PER_POLL,
};
pub use response::{parse_reply, HecReply};

use super::{
    AckPolicy, AckReport, AckReset, AckToken, BuildResult, Classification, HttpRequest,
    HttpResponse, Sink, SinkError, SinkRecord,
};
use crate::secret::Secret;

/// A Splunk HEC sink; see the module documentation.
#[derive(Debug)]
pub struct SplunkHecSink {
    name: String,
    config: HecConfig,
    token: Secret,
    /// `endpoint` without trailing slashes.
    base: String,
    state: Mutex<ChannelState>,
}

#[derive(Debug)]
struct ChannelState {
    channel: String,
    cookies: BTreeMap<String, String>,
}

impl SplunkHecSink {
    /// A sink named `name` with a random channel GUID. `token` is `config.token`, resolved.
    ///
    /// # Errors
    /// [`SinkError::Config`] when the endpoint is not an `http(s)://` base URL.
    pub fn new(
        name: impl Into<String>,
        config: HecConfig,
        token: Secret,
    ) -> Result<Self, SinkError> {
        Self::with_channel(name, config, token, new_channel())
    }

    /// Like [`SplunkHecSink::new`] with a given first channel (tests, or a channel kept across
    /// restarts).
    ///
    /// # Errors
    /// As [`SplunkHecSink::new`], and when `channel` is empty.
    pub fn with_channel(
        name: impl Into<String>,
        config: HecConfig,
        token: Secret,
        channel: impl Into<String>,
    ) -> Result<Self, SinkError> {
        let base = config.endpoint.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SinkError::Config(format!(
                "splunk_hec endpoint must be an http(s):// URL, got `{base}`"
            )));
        }
        if base.contains("/services/collector") {
            return Err(SinkError::Config(
                "splunk_hec endpoint is the base URL (scheme, host, port), without \
                 /services/collector"
                    .to_string(),
            ));
        }
        let channel = channel.into();
        if channel.is_empty() {
            return Err(SinkError::Config("empty HEC channel".to_string()));
        }
        Ok(SplunkHecSink {
            name: name.into(),
            config,
            token,
            base,
            state: Mutex::new(ChannelState {
                channel,
                cookies: BTreeMap::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &HecConfig {
        &self.config
    }

    /// The current channel GUID.
    pub fn channel(&self) -> String {
        self.state().channel.clone()
    }

    fn state(&self) -> MutexGuard<'_, ChannelState> {
        // The state is two plain values: a panic elsewhere cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The channel and the `Cookie` header value for the next request.
    fn channel_and_cookie(&self) -> (String, Option<String>) {
        let st = self.state();
        let cookie = (!st.cookies.is_empty()).then(|| {
            st.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        (st.channel.clone(), cookie)
    }

    /// Learns the response's `Set-Cookie`s. When a cookie we held changes value, starts a new
    /// channel and returns the old one.
    fn observe_cookies(&self, response: &HttpResponse) -> Option<AckReset> {
        let mut st = self.state();
        let mut changed = false;
        for raw in response.header_values("set-cookie") {
            let Some((name, value, expired)) = parse_set_cookie(raw) else {
                continue;
            };
            if expired {
                st.cookies.remove(&name);
                continue;
            }
            match st.cookies.insert(name, value.clone()) {
                Some(old) if old != value => changed = true,
                _ => {}
            }
        }
        if changed {
            let old = std::mem::replace(&mut st.channel, new_channel());
            Some(AckReset { channel: old })
        } else {
            None
        }
    }

    /// Starts a new channel if `channel` is still the current one; returns the old channel.
    fn reset_channel_if(&self, channel: &str) -> Option<String> {
        let mut st = self.state();
        (st.channel == channel).then(|| std::mem::replace(&mut st.channel, new_channel()))
    }
}

fn new_channel() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `name=value; Path=/; Max-Age=0` → (`name`, `value`, expired).
fn parse_set_cookie(raw: &str) -> Option<(String, String, bool)> {
    let mut parts = raw.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let (name, value) = (name.trim(), value.trim().trim_matches('"'));
    if name.is_empty() {
        return None;
    }
    let expired = value.is_empty()
        || parts.any(|attr| {
            let a = attr.trim().to_ascii_lowercase();
            a == "max-age=0" || a.starts_with("max-age=-")
        });
    Some((name.to_string(), value.to_string(), expired))
}

impl Sink for SplunkHecSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn build(&self, batch: &[SinkRecord], _now: SystemTime) -> BuildResult {
        request::build(self, batch)
    }

    fn classify(&self, request: &HttpRequest, response: &HttpResponse) -> Classification {
        response::classify(self, request, response)
    }

    fn redact(&self, text: &str) -> String {
        self.token.redact(text)
    }

    fn ack_policy(&self) -> Option<AckPolicy> {
        self.config.indexer_acks.map(|a| a.policy())
    }

    fn ack_poll(&self, pending: &[AckToken]) -> Vec<HttpRequest> {
        if self.config.indexer_acks.is_none() {
            return Vec::new();
        }
        request::ack_poll(self, pending)
    }

    fn parse_acks(
        &self,
        request: &HttpRequest,
        response: &HttpResponse,
    ) -> Result<AckReport, SinkError> {
        if self.config.indexer_acks.is_none() {
            return Err(SinkError::AcksUnsupported);
        }
        response::parse_acks(self, request, response)
    }

    fn health_probe(&self) -> Option<HttpRequest> {
        Some(request::health(self))
    }

    fn probe_ok(&self, response: &HttpResponse) -> bool {
        response.status == 200
    }
}
