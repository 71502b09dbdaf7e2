//! Reading Slack's answers.
//!
//! `chat.postMessage` answers almost everything with HTTP 200 and `{"ok": false, "error":
//! "<code>"}`, so the body decides; incoming webhooks answer with an HTTP status and the code as
//! plain text (`invalid_payload`, `channel_is_archived`, …).

use serde::Deserialize;

use super::SlackSink;
use crate::sink::classify::{body_snippet, by_status, message, retry_after, too_large};
use crate::sink::{Classification, HttpResponse, Outcome, RetryAfter, SinkDown};

/// How an error code is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Slack throttled us: retry after `Retry-After` (default 1 s).
    RateLimited,
    /// A problem on Slack's side: retry.
    Server,
    /// The token is invalid, revoked, or lacks a permission: every message fails.
    Auth,
    /// This channel cannot take messages (gone, archived, bot not a member, read-only).
    Channel,
    /// The message itself was refused (too long, invalid blocks, …).
    Payload,
    /// The thread we replied to is gone: post top-level instead.
    Thread,
    /// A code we do not know.
    Unknown,
}

/// The kind of a Slack error code (Web API or incoming webhook).
pub fn error_kind(code: &str) -> ErrorKind {
    match code {
        "ratelimited" | "rate_limited" => ErrorKind::RateLimited,
        "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout"
        | "team_added_to_org"
        | "rollup_error" => ErrorKind::Server,
        "invalid_auth"
        | "not_authed"
        | "account_inactive"
        | "token_revoked"
        | "token_expired"
        | "no_permission"
        | "missing_scope"
        | "ekm_access_denied"
        | "org_login_required"
        | "access_denied"
        | "accesslimited"
        | "not_allowed_token_type"
        | "team_access_not_granted"
        | "enterprise_is_restricted"
        | "invalid_token"
        | "action_prohibited"
        | "team_disabled"
        | "no_service"
        | "no_service_id"
        | "no_team" => ErrorKind::Auth,
        "channel_not_found"
        | "not_in_channel"
        | "is_archived"
        | "channel_is_archived"
        | "restricted_action"
        | "restricted_action_read_only_channel"
        | "restricted_action_thread_only_channel"
        | "posting_to_general_channel_denied"
        | "user_not_found" => ErrorKind::Channel,
        "thread_not_found"
        | "invalid_thread_ts"
        | "cannot_reply_to_message"
        | "restricted_action_non_threadable_channel" => ErrorKind::Thread,
        "msg_too_long"
        | "msg_blocks_too_long"
        | "no_text"
        | "invalid_blocks"
        | "invalid_blocks_format"
        | "invalid_attachments"
        | "too_many_attachments"
        | "invalid_payload"
        | "invalid_arguments"
        | "invalid_arg_name"
        | "invalid_array_arg"
        | "invalid_charset"
        | "invalid_form_data"
        | "invalid_post_type"
        | "missing_post_type"
        | "invalid_json"
        | "json_not_object"
        | "invalid_metadata_format"
        | "invalid_metadata_schema"
        | "metadata_too_large"
        | "as_user_not_supported"
        | "missing_text_or_fallback_or_attachments" => ErrorKind::Payload,
        _ => ErrorKind::Unknown,
    }
}

/// What an error code means, for the DLQ message.
fn explain(code: &str) -> &'static str {
    match code {
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            "the bot token is missing, invalid or revoked: put the current token in the secret"
        }
        "missing_scope" | "no_permission" | "not_allowed_token_type" => {
            "the token lacks a permission: the app needs the chat:write scope (a bot token, xoxb-)"
        }
        "invalid_token" | "no_service" | "no_service_id" | "no_team" | "team_disabled" => {
            "the webhook URL is invalid or was revoked: create a new incoming webhook and put its \
             URL in the secret"
        }
        "action_prohibited" => "a workspace admin restricted posting through this webhook",
        "channel_not_found" => "the channel does not exist or the app cannot see it",
        "not_in_channel" => "the app is not a member of the channel: invite it (/invite @app)",
        "is_archived" | "channel_is_archived" => "the channel is archived",
        "restricted_action"
        | "restricted_action_read_only_channel"
        | "restricted_action_thread_only_channel"
        | "posting_to_general_channel_denied" => {
            "a workspace or channel setting does not let the app post there"
        }
        "msg_too_long" | "msg_blocks_too_long" => "the message is too long",
        "invalid_blocks" | "invalid_blocks_format" | "invalid_attachments" => {
            "Slack refused the message's blocks"
        }
        "no_text" | "missing_text_or_fallback_or_attachments" => "the message has no text",
        "invalid_payload" | "invalid_json" | "json_not_object" => {
            "Slack could not read the request body"
        }
        _ => "",
    }
}

/// The `chat.postMessage` answer's shape.
#[derive(Debug, Deserialize)]
pub struct ApiAnswer {
    /// Success.
    pub ok: bool,
    /// Error code when not ok.
    #[serde(default)]
    pub error: Option<String>,
    /// The posted message's `ts`.
    #[serde(default)]
    pub ts: Option<String>,
}

/// A webhook's plain-text error code (`invalid_payload`), if the body is one.
pub fn text_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then(|| text.to_string())
}

/// The status an incoming webhook answers an error code with: the breaker reads 401/403 as
/// "credentials refused, open at once", and `chat.postMessage` gives every error with HTTP 200,
/// so its outage signals carry the webhook's status for the same condition.
fn equivalent_status(kind: ErrorKind, code: &str) -> u16 {
    match (kind, code) {
        (ErrorKind::Auth, _) | (_, "not_in_channel") => 403,
        (_, "is_archived" | "channel_is_archived") => 410,
        (ErrorKind::Channel, _) => 404,
        (ErrorKind::RateLimited, _) => 429,
        (ErrorKind::Server, _) => 503,
        _ => 400,
    }
}

/// Outcome and outage signal for an error code. `status` is the answer's HTTP status,
/// `where_` names the destination for the message.
pub(crate) fn for_code(
    sink: &SlackSink,
    code: &str,
    status: u16,
    response: &HttpResponse,
    records: usize,
    where_: &str,
) -> Classification {
    let kind = error_kind(code);
    let why = explain(code);
    let text = if why.is_empty() {
        format!("HTTP {status}: Slack refused the message to {where_}: {code}")
    } else {
        format!("HTTP {status}: Slack refused the message to {where_}: {code} ({why})")
    };
    let msg = message(&text, &sink.secrets);
    let down = |class: &str| {
        Some(SinkDown {
            class: class.to_string(),
            status: Some(equivalent_status(kind, code)),
            message: msg.clone(),
        })
    };
    let (outcome, sink_down) = match kind {
        ErrorKind::RateLimited => (
            Outcome::Retry {
                class: "rate_limited".to_string(),
                status: Some(status),
                message: msg.clone(),
                // Slack always sends Retry-After with a 429; a body-only `ratelimited` waits a
                // second, the per-channel window.
                retry_after: retry_after(response)
                    .or(Some(RetryAfter::Delay(std::time::Duration::from_secs(1)))),
            },
            down("rate_limited"),
        ),
        ErrorKind::Server => (
            Outcome::Retry {
                class: "server_error".to_string(),
                status: Some(status),
                message: msg.clone(),
                retry_after: retry_after(response),
            },
            down("server_error"),
        ),
        ErrorKind::Auth => (
            Outcome::permanent("auth", Some(status), msg.clone()),
            // The bot token serves every channel; a webhook URL only its own.
            if sink.is_webhook_mode() && !sink.single_destination() {
                None
            } else {
                down("auth")
            },
        ),
        ErrorKind::Channel => (
            Outcome::permanent(code, Some(status), msg.clone()),
            // A dead channel concerns every message only when it is the only one.
            if sink.single_destination() {
                down(code)
            } else {
                None
            },
        ),
        ErrorKind::Thread => (
            Outcome::retry("thread_gone", Some(status), msg.clone()),
            None,
        ),
        ErrorKind::Payload => (Outcome::permanent(code, Some(status), msg.clone()), None),
        ErrorKind::Unknown => (
            Outcome::permanent("rejected", Some(status), msg.clone()),
            None,
        ),
    };
    Classification {
        outcomes: vec![outcome; records],
        sink_down,
        ..Classification::default()
    }
}

/// An incoming webhook's answer. `name` is the webhook's key in the config.
pub(crate) fn classify_webhook(
    sink: &SlackSink,
    name: &str,
    response: &HttpResponse,
    records: usize,
) -> Classification {
    let status = response.status;
    if (200..300).contains(&status) {
        return Classification::uniform(Outcome::Delivered, records);
    }
    let where_ = format!("webhook `{name}`");
    if status == 413 {
        return too_large(
            records,
            message(
                &format!("HTTP 413: Slack refused the message to {where_}: too large"),
                &sink.secrets,
            ),
        );
    }
    match (status, text_code(&response.body)) {
        (429, code) => for_code(
            sink,
            code.as_deref().unwrap_or("rate_limited"),
            status,
            response,
            records,
            &where_,
        ),
        (400 | 403 | 404 | 410, Some(code)) => {
            for_code(sink, &code, status, response, records, &where_)
        }
        (403, None) => for_code(
            sink,
            "action_prohibited",
            status,
            response,
            records,
            &where_,
        ),
        (404, None) => for_code(sink, "no_service", status, response, records, &where_),
        (410, None) => for_code(
            sink,
            "channel_is_archived",
            status,
            response,
            records,
            &where_,
        ),
        (500..=599, Some(code)) if error_kind(&code) == ErrorKind::Server => {
            for_code(sink, &code, status, response, records, &where_)
        }
        _ => by_status(response, records, None, &sink.secrets),
    }
}

/// A `chat.postMessage` answer, read: the classification, and the posted message's `ts` when it
/// was posted.
pub(crate) fn classify_api(
    sink: &SlackSink,
    channel: &str,
    response: &HttpResponse,
    records: usize,
) -> (Classification, Option<String>) {
    let status = response.status;
    let where_ = format!("channel {channel}");
    let answer = serde_json::from_slice::<ApiAnswer>(&response.body).ok();
    match (status, answer) {
        (200..=299, Some(a)) if a.ok => {
            (Classification::uniform(Outcome::Delivered, records), a.ts)
        }
        (
            _,
            Some(ApiAnswer {
                ok: false,
                error: Some(code),
                ..
            }),
        ) => {
            let code = code.trim().to_string();
            (
                for_code(sink, &code, status, response, records, &where_),
                None,
            )
        }
        (429, None) => (
            for_code(sink, "ratelimited", status, response, records, &where_),
            None,
        ),
        (200..=299, _) => {
            // A 2xx that is not Slack's JSON (a proxy page): we cannot tell whether Slack
            // posted it; retry (at-least-once).
            let msg = message(
                &format!(
                    "HTTP {status}: unreadable answer from chat.postMessage for {where_}: {}",
                    body_snippet(&response.body)
                ),
                &sink.secrets,
            );
            (
                Classification::uniform(
                    Outcome::retry("unreadable_response", Some(status), msg),
                    records,
                ),
                None,
            )
        }
        _ => (by_status(response, records, None, &sink.secrets), None),
    }
}
