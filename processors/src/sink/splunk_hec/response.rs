//! Reading HEC answers: event responses (with `ackId`s and HEC error codes), ack poll answers.
//!
//! HEC error codes (body `{"text":…,"code":N}`) and what they mean for the records:
//!
//! | code | text | outcome | sink down |
//! | --- | --- | --- | --- |
//! | 0 | Success | delivered, or awaiting ack (`ackId`) | no |
//! | 1–4 | token disabled / required / invalid authorization / invalid token | permanent `auth` | yes |
//! | 5 | No data | permanent `rejected` | no |
//! | 6, 12, 13, 15 | invalid data format / event field required / blank / indexed fields | the event at `invalid-event-number` permanent, the others retried; no number: split (one event: permanent) | no |
//! | 7 | Incorrect index | permanent `hec_incorrect_index` | yes |
//! | 8 | Internal server error | retry `server_error` | yes |
//! | 9, 18–20 | Server is busy / HEC unhealthy | retry `server_busy` | yes |
//! | 10, 11 | Data channel missing / invalid | retry, new channel, pending acks of the old one reset | no |
//! | 14 | ACK is disabled | permanent `hec_ack_disabled` | yes |
//! | other | — | by HTTP status ([`crate::sink::classify`]) | by status |

use serde_json::Value;

use super::request::CHANNEL_HEADER;
use super::SplunkHecSink;
use crate::sink::classify::{self, message};
use crate::sink::{
    AckReport, AckReset, AckToken, Classification, HttpRequest, HttpResponse, Outcome, SinkDown,
    SinkError,
};

/// The fields of a HEC reply body that matter; anything unreadable is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HecReply {
    /// `text`.
    pub text: Option<String>,
    /// `code`.
    pub code: Option<i64>,
    /// `ackId`.
    pub ack_id: Option<u64>,
    /// `invalid-event-number` (0-based index of the first bad event in the request).
    pub invalid_event_number: Option<u64>,
}

/// Reads a reply body leniently (never fails: a proxy's HTML page gives an empty reply).
pub fn parse_reply(body: &[u8]) -> HecReply {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return HecReply::default();
    };
    HecReply {
        text: map.get("text").and_then(Value::as_str).map(str::to_string),
        code: map.get("code").and_then(Value::as_i64),
        ack_id: map.get("ackId").and_then(Value::as_u64),
        invalid_event_number: map.get("invalid-event-number").and_then(Value::as_u64),
    }
}

/// `Server is busy (code 9)` / `Invalid data format (code 6, invalid-event-number 3)`.
fn detail(reply: &HecReply) -> Option<String> {
    let mut s = reply.text.clone().unwrap_or_default();
    if let Some(c) = reply.code {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&format!("(code {c}"));
        if let Some(n) = reply.invalid_event_number {
            s.push_str(&format!(", invalid-event-number {n}"));
        }
        s.push(')');
    }
    (!s.is_empty()).then_some(s)
}

fn describe(status: u16, reply: &HecReply) -> String {
    match detail(reply) {
        Some(d) => format!("HTTP {status}: {d}"),
        None => format!("HTTP {status}"),
    }
}

/// Classifies one event-request response.
pub fn classify(
    sink: &SplunkHecSink,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Classification {
    let cookie_reset = sink.observe_cookies(response);
    let n = request.records.len();
    let status = response.status;
    let reply = parse_reply(&response.body);
    let secrets = std::slice::from_ref(&sink.token);
    let msg = message(&describe(status, &reply), secrets);
    let req_channel = request
        .header(CHANNEL_HEADER)
        .unwrap_or_default()
        .to_string();

    let down = |class: &str| {
        Some(SinkDown {
            class: class.to_string(),
            status: Some(status),
            message: msg.clone(),
        })
    };
    let mut c = if (200..300).contains(&status) {
        let outcome = match (sink.config.indexer_acks, reply.ack_id) {
            (Some(_), Some(id)) => {
                if cookie_reset.is_some() || req_channel != sink.channel() {
                    Outcome::retry(
                        "hec_channel_reset",
                        Some(status),
                        "accepted on a channel that was reset (load balancer cookie changed) \
                         before its ack could be polled; sending again",
                    )
                } else {
                    Outcome::AwaitAck(AckToken {
                        channel: req_channel.clone(),
                        id,
                    })
                }
            }
            // Without indexer acks (or a token without useACK) a 200 is HEC's promise.
            _ => Outcome::Delivered,
        };
        Classification::uniform(outcome, n)
    } else {
        match reply.code {
            Some(1..=4) => Classification {
                sink_down: down("auth"),
                ..Classification::uniform(Outcome::permanent("auth", Some(status), msg.clone()), n)
            },
            Some(7) => Classification {
                sink_down: down("hec_incorrect_index"),
                ..Classification::uniform(
                    Outcome::permanent("hec_incorrect_index", Some(status), msg.clone()),
                    n,
                )
            },
            Some(14) => Classification {
                sink_down: down("hec_ack_disabled"),
                ..Classification::uniform(
                    Outcome::permanent("hec_ack_disabled", Some(status), msg.clone()),
                    n,
                )
            },
            Some(5) => Classification::uniform(
                Outcome::permanent("rejected", Some(status), msg.clone()),
                n,
            ),
            Some(code @ (6 | 12 | 13 | 15)) if (400..500).contains(&status) => {
                let class = match code {
                    6 => "hec_invalid_data_format",
                    12 => "hec_event_field_required",
                    13 => "hec_event_field_blank",
                    _ => "hec_indexed_fields_error",
                };
                invalid_event(n, reply.invalid_event_number, class, status, &msg)
            }
            Some(10 | 11) => {
                let old = sink.reset_channel_if(&req_channel);
                Classification {
                    ack_reset: old.map(|channel| AckReset { channel }),
                    ..Classification::uniform(
                        Outcome::retry("hec_channel_invalid", Some(status), msg.clone()),
                        n,
                    )
                }
            }
            Some(code @ (8 | 9 | 18..=20)) => {
                let class = if code == 8 {
                    "server_error"
                } else {
                    "server_busy"
                };
                Classification {
                    sink_down: down(class),
                    ..Classification::uniform(
                        Outcome::Retry {
                            class: class.to_string(),
                            status: Some(status),
                            message: msg.clone(),
                            retry_after: classify::retry_after(response),
                        },
                        n,
                    )
                }
            }
            _ => classify::by_status(response, n, detail(&reply).as_deref(), secrets),
        }
    };
    if c.ack_reset.is_none() {
        c.ack_reset = cookie_reset;
    }
    c
}

/// A data error: the bad event alone is permanent, the rest retried; unlocatable → split.
fn invalid_event(
    n: usize,
    bad: Option<u64>,
    class: &str,
    status: u16,
    msg: &str,
) -> Classification {
    match bad.and_then(|b| usize::try_from(b).ok()).filter(|&b| b < n) {
        Some(bad) => Classification {
            outcomes: (0..n)
                .map(|i| {
                    if i == bad {
                        Outcome::permanent(class, Some(status), msg)
                    } else {
                        Outcome::retry(
                            "hec_batch_rejected",
                            Some(status),
                            format!("another event of the request was invalid: {msg}"),
                        )
                    }
                })
                .collect(),
            ..Classification::default()
        },
        None if n >= 2 => Classification {
            outcomes: vec![Outcome::retry(class, Some(status), msg); n],
            split: true,
            ..Classification::default()
        },
        None => Classification::uniform(Outcome::permanent(class, Some(status), msg), n),
    }
}

/// Reads an ack poll answer `{"acks":{"0":true,"1":false}}`.
pub fn parse_acks(
    sink: &SplunkHecSink,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Result<AckReport, SinkError> {
    let cookie_reset = sink.observe_cookies(response);
    let secrets = std::slice::from_ref(&sink.token);
    let channel = request
        .header(CHANNEL_HEADER)
        .ok_or_else(|| SinkError::AckPoll {
            status: response.status,
            message: "ack poll request has no channel header".to_string(),
        })?
        .to_string();
    if let Some(reset) = cookie_reset {
        // The answer came from another indexer: it knows nothing of our pending ackIds.
        return Ok(AckReport {
            acked: Vec::new(),
            ack_reset: Some(reset),
        });
    }
    if response.status != 200 {
        let reply = parse_reply(&response.body);
        if matches!(reply.code, Some(10 | 11)) {
            let old = sink.reset_channel_if(&channel);
            return Ok(AckReport {
                acked: Vec::new(),
                ack_reset: Some(AckReset {
                    channel: old.unwrap_or(channel),
                }),
            });
        }
        let text = if reply.text.is_some() {
            describe(response.status, &reply)
        } else {
            format!(
                "HTTP {}: {}",
                response.status,
                classify::body_snippet(&response.body)
            )
        };
        return Err(SinkError::AckPoll {
            status: response.status,
            message: message(&text, secrets),
        });
    }
    let bad = |why: &str| SinkError::AckPoll {
        status: response.status,
        message: message(
            &format!("{why}: {}", classify::body_snippet(&response.body)),
            secrets,
        ),
    };
    let value: Value =
        serde_json::from_slice(&response.body).map_err(|_| bad("ack answer is not JSON"))?;
    let acks = value
        .get("acks")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("ack answer has no `acks` object"))?;
    let mut acked: Vec<AckToken> = acks
        .iter()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .filter_map(|(k, _)| k.parse::<u64>().ok())
        .map(|id| AckToken {
            channel: channel.clone(),
            id,
        })
        .collect();
    acked.sort();
    Ok(AckReport {
        acked,
        ack_reset: None,
    })
}
