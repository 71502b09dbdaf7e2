//! Retry tiers: a record that fails on its own (after in-process retries) moves to the next
//! tier topic `<sink>.retry.<delay>` with a due time; after the last tier it goes to the DLQ.

use std::time::Duration;

/// One tier: its delay and topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryTier {
    /// How long a record waits in this tier.
    pub delay: Duration,
    /// `<sink>.retry.<delay>`.
    pub topic: String,
}

/// Parses a delay like `30s`, `5m`, `2h`, `1500ms`.
pub fn parse_delay(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{t}`: missing unit (ms, s, m, h)"))?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{t}`: expected a whole number before the unit"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("`{t}`: unit must be ms, s, m or h")),
    };
    if d.is_zero() {
        return Err(format!("`{t}`: must be more than zero"));
    }
    Ok(d)
}

/// The tier topics of a sink, in order.
pub fn tiers(sink: &str, delays: &[String]) -> Result<Vec<RetryTier>, String> {
    delays
        .iter()
        .map(|d| {
            Ok(RetryTier {
                delay: parse_delay(d)?,
                topic: format!("{sink}.retry.{}", d.trim()),
            })
        })
        .collect()
}

/// The DLQ topic of a sink.
pub fn dlq_topic(sink: &str) -> String {
    format!("{sink}.dlq")
}

/// Where a record goes after failing on attempt `attempt` (1-based count of tiers already
/// tried is `attempt - 1`): the next tier, or `None` for the DLQ.
pub fn next_tier(tiers: &[RetryTier], tiers_done: usize) -> Option<&RetryTier> {
    tiers.get(tiers_done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_delays_and_names_topics() {
        let t = tiers("splunk", &["30s".into(), "5m".into(), "30m".into()]).unwrap();
        assert_eq!(t[0].topic, "splunk.retry.30s");
        assert_eq!(t[1].delay, Duration::from_secs(300));
        assert_eq!(next_tier(&t, 3), None);
        assert_eq!(parse_delay("1500ms").unwrap(), Duration::from_millis(1500));
        assert!(parse_delay("5").is_err());
        assert!(parse_delay("0s").is_err());
        assert!(parse_delay("5d").is_err());
    }
}
