//! Reading Sumo Logic's answers. The HTTP Source answers a whole request with a status (its
//! bodies are not a stable contract), so classification is by status.

use super::SumoLogicSink;
use crate::sink::classify::{body_snippet, by_status, message};
use crate::sink::{Classification, HttpRequest, HttpResponse, Outcome, SinkDown};

/// One outcome per record of `request`; see the module documentation of the sink.
pub fn classify(
    sink: &SumoLogicSink,
    request: &HttpRequest,
    response: &HttpResponse,
) -> Classification {
    let n = request.records.len();
    let status = response.status;
    let (class, what) = match status {
        200..=299 => return Classification::uniform(Outcome::Delivered, n),
        401 | 403 => (
            "auth",
            "the source URL's token is missing or invalid (the URL was regenerated?)",
        ),
        404 => (
            "source_not_found",
            "no HTTP source at this URL (the source was deleted, or the URL is wrong)",
        ),
        _ => return by_status(response, n, None, &sink.secrets),
    };
    let snippet = body_snippet(&response.body);
    let snippet = snippet.trim();
    let text = format!(
        "HTTP {status}: Sumo Logic refused the upload: {what}. Delivery pauses (circuit \
         breaker) until `url` holds the source's current upload URL{}",
        if snippet.is_empty() {
            String::new()
        } else {
            format!(" ({snippet})")
        }
    );
    let msg = message(&text, &sink.secrets);
    Classification {
        outcomes: vec![Outcome::permanent(class, Some(status), msg.clone()); n],
        sink_down: Some(SinkDown {
            class: class.to_string(),
            status: Some(status),
            message: msg,
        }),
        ..Classification::default()
    }
}
