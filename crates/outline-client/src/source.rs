//! [`MetricsSource`] for [`OutlineClient`]: the management API's metrics as [`Series`].
//!
//! # Series
//!
//! By default (a query without names) only the per-key transfer is collected — one request,
//! `GET /metrics/transfer`:
//!
//! | series | kind | unit | labels |
//! |---|---|---|---|
//! | `outline_access_key_bytes_transferred` | gauge | bytes | `access_key_id` |
//!
//! It is the bytes the key sent out of the server over the **rolling last 30 days** — not a
//! total since the key was created. Old traffic drops out of the window, so the value can
//! go down without a reset: it is a gauge, not a counter (a `rate()` over it would be
//! wrong). Keys without traffic in the window are absent (their value is 0).
//!
//! The experimental server metrics (`GET /experimental/server/metrics`, server 1.12.0+) are
//! collected only when the query names ask for `outline_server_*` series explicitly
//! (`outline_server_*`, `outline_*`, `*` or an exact name below). They are aggregates over
//! the window, not time series; each has one point at the time of the query (bandwidth
//! samples at their own timestamp):
//!
//! | series | kind | unit | labels |
//! |---|---|---|---|
//! | `outline_server_tunnel_time_seconds` | gauge | seconds | |
//! | `outline_server_data_transferred_bytes` | gauge | bytes | |
//! | `outline_server_bandwidth_current_bytes_per_second` | gauge | bytes_per_second | |
//! | `outline_server_bandwidth_peak_bytes_per_second` | gauge | bytes_per_second | |
//! | `outline_server_location_data_transferred_bytes` | gauge | bytes | `location`, `asn`, `as_org` |
//! | `outline_server_location_tunnel_time_seconds` | gauge | seconds | `location`, `asn`, `as_org` |
//! | `outline_server_access_key_data_transferred_bytes` | gauge | bytes | `access_key_id` |
//! | `outline_server_access_key_tunnel_time_seconds` | gauge | seconds | `access_key_id` |
//! | `outline_server_access_key_peak_device_count` | gauge | devices | `access_key_id` |
//! | `outline_server_access_key_last_traffic_seen_timestamp_seconds` | gauge | seconds | `access_key_id` |
//!
//! Missing `location`, `asn` and `as_org` are empty labels. Keys the server reports with
//! `accessKeyId: null` (non-numeric ids) cannot be told apart and are left out of the
//! per-key server series; their traffic is in `outline_access_key_bytes_transferred`.
//!
//! # Query mapping
//!
//! - **names** choose the requests as above, then filter the series.
//! - **range**: the transfer window is fixed by the server (30 days) and ignores it. For the
//!   server metrics, `since` = now − range start, rounded up to whole seconds; without a
//!   range, 30 days. A range reaching back more than 3 299 700 s (≈ 38.2 days) is an
//!   [`Error::InvalidInput`]: the server cannot answer it. The range end is not sent: the
//!   server's window always ends now.
//! - **step** is ignored: there is one value per series.
//!
//! If the server is older than 1.11.1 (no experimental endpoint) and the transfer was
//! asked for too, the server series are left out; if only server series were asked for,
//! the [`Error::Unsupported`] is returned.

use chrono::{DateTime, Utc};
use metrics_core::{Error, MetricsSource, Query, Result, Series, SeriesKind, Unit, async_trait};

use crate::BACKEND;
use crate::client::OutlineClient;
use crate::model::{ServerMetrics, Since, TransferMetrics, unix_seconds};

/// The per-key transfer series.
pub const TRANSFER_SERIES: &str = "outline_access_key_bytes_transferred";
/// The prefix of every series from the experimental server metrics.
pub const SERVER_SERIES_PREFIX: &str = "outline_server_";

const TRANSFER_HELP: &str =
    "Bytes the access key sent from the server over the rolling last 30 days";

#[async_trait]
impl MetricsSource for OutlineClient {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn endpoint(&self) -> Option<String> {
        Some(Self::endpoint(self).to_owned())
    }

    async fn collect(&self, query: &Query) -> Result<Vec<Series>> {
        query.validate(BACKEND)?;
        let now = Utc::now();
        let want_transfer = query.may_match_prefix(TRANSFER_SERIES);
        let want_server = !query.names.is_empty() && query.may_match_prefix(SERVER_SERIES_PREFIX);
        let since = if want_server {
            Some(since_for(query, now)?)
        } else {
            None
        };

        let mut series = Vec::new();
        if want_transfer {
            let transfer = self.metrics().transfer().await?;
            series.extend(transfer_series(&transfer, now));
        }
        if let Some(since) = since {
            match self.metrics().server_metrics(since).await {
                Ok(metrics) => series.extend(server_series(&metrics, now)),
                Err(Error::Unsupported { .. }) if want_transfer => {}
                Err(error) => return Err(error),
            }
        }
        series.retain(|s| query.matches_name(&s.name));
        Ok(series)
    }
}

/// The server metrics window for a query; see the module docs.
fn since_for(query: &Query, now: DateTime<Utc>) -> Result<Since> {
    let Some(range) = query.range else {
        return Ok(Since::default());
    };
    let back = now.signed_duration_since(range.start);
    let millis = back.num_milliseconds().max(1);
    let seconds =
        u64::try_from(millis.div_euclid(1000) + i64::from(millis % 1000 != 0)).unwrap_or(u64::MAX);
    if seconds > Since::MAX_SECONDS {
        return Err(Error::invalid_input(
            BACKEND,
            format!(
                "the Outline server metrics reach back at most {} s (about 38.2 days); the query range starts {seconds} s ago",
                Since::MAX_SECONDS
            ),
        ));
    }
    Since::from_secs(seconds)
}

/// One series per key with traffic.
pub(crate) fn transfer_series(transfer: &TransferMetrics, now: DateTime<Utc>) -> Vec<Series> {
    transfer
        .iter()
        .map(|(id, bytes)| {
            #[allow(clippy::cast_precision_loss, reason = "Series values are f64")]
            let value = bytes as f64;
            Series::new(TRANSFER_SERIES, SeriesKind::Gauge)
                .with_help(TRANSFER_HELP)
                .with_unit(Unit::Bytes)
                .with_label("access_key_id", id)
                .with_point(now, value)
        })
        .collect()
}

fn gauge(name: &str, help: &str, unit: Unit) -> Series {
    Series::new(name, SeriesKind::Gauge)
        .with_help(help)
        .with_unit(unit)
}

fn bytes_per_second() -> Unit {
    Unit::Other("bytes_per_second".to_owned())
}

/// The experimental metrics as series; see the module docs.
pub(crate) fn server_series(metrics: &ServerMetrics, now: DateTime<Utc>) -> Vec<Series> {
    let server = &metrics.server;
    let at = |timestamp: Option<f64>| timestamp.and_then(unix_seconds).unwrap_or(now);
    let mut series = vec![
        gauge(
            "outline_server_tunnel_time_seconds",
            "Tunnel time of all devices in the window",
            Unit::Seconds,
        )
        .with_point(now, server.tunnel_time.seconds),
        gauge(
            "outline_server_data_transferred_bytes",
            "Bytes sent from the server in the window",
            Unit::Bytes,
        )
        .with_point(now, server.data_transferred.bytes),
        gauge(
            "outline_server_bandwidth_current_bytes_per_second",
            "Throughput over the last 300 s",
            bytes_per_second(),
        )
        .with_point(
            at(server.bandwidth.current.timestamp),
            server.bandwidth.current.data.bytes,
        ),
        gauge(
            "outline_server_bandwidth_peak_bytes_per_second",
            "Highest 300 s throughput in the window",
            bytes_per_second(),
        )
        .with_point(
            at(server.bandwidth.peak.timestamp),
            server.bandwidth.peak.data.bytes,
        ),
    ];
    for location in &server.locations {
        let labelled = |s: Series| {
            s.with_label("location", location.location.clone().unwrap_or_default())
                .with_label(
                    "asn",
                    location.asn.map(|asn| asn.to_string()).unwrap_or_default(),
                )
                .with_label("as_org", location.as_org.clone().unwrap_or_default())
        };
        series.push(labelled(
            gauge(
                "outline_server_location_data_transferred_bytes",
                "Bytes sent to clients at this location in the window",
                Unit::Bytes,
            )
            .with_point(now, location.data_transferred.bytes),
        ));
        series.push(labelled(
            gauge(
                "outline_server_location_tunnel_time_seconds",
                "Tunnel time of clients at this location in the window",
                Unit::Seconds,
            )
            .with_point(now, location.tunnel_time.seconds),
        ));
    }
    for key in &metrics.access_keys {
        let Some(id) = key.access_key_id else {
            continue;
        };
        let id = id.to_string();
        series.push(
            gauge(
                "outline_server_access_key_data_transferred_bytes",
                "Bytes the access key transferred in the window",
                Unit::Bytes,
            )
            .with_label("access_key_id", id.clone())
            .with_point(now, key.data_transferred.bytes),
        );
        series.push(
            gauge(
                "outline_server_access_key_tunnel_time_seconds",
                "Tunnel time of the access key's devices in the window",
                Unit::Seconds,
            )
            .with_label("access_key_id", id.clone())
            .with_point(now, key.tunnel_time.seconds),
        );
        let peak = key.connection.peak_device_count;
        #[allow(clippy::cast_precision_loss, reason = "Series values are f64")]
        let devices = peak.data as f64;
        series.push(
            gauge(
                "outline_server_access_key_peak_device_count",
                "Most devices using the access key at once in the window",
                Unit::Other("devices".to_owned()),
            )
            .with_label("access_key_id", id.clone())
            .with_point(at(peak.timestamp), devices),
        );
        if let Some(seen) = key.connection.last_traffic_seen {
            series.push(
                gauge(
                    "outline_server_access_key_last_traffic_seen_timestamp_seconds",
                    "When the access key last had traffic (Unix seconds)",
                    Unit::Seconds,
                )
                .with_label("access_key_id", id)
                .with_point(now, seen),
            );
        }
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn since_follows_the_range_start() {
        let now = Utc::now();
        let query = Query::new().with_range(now - chrono::Duration::seconds(3600), now);
        assert_eq!(since_for(&query, now).unwrap().as_secs(), 3600);
        let query = Query::new().with_range(now - chrono::Duration::milliseconds(3_600_001), now);
        assert_eq!(since_for(&query, now).unwrap().as_secs(), 3601);
        assert_eq!(since_for(&Query::new(), now).unwrap(), Since::default());
        let query = Query::new().last(Duration::from_secs(90 * 86_400));
        assert!(matches!(
            since_for(&query, Utc::now()),
            Err(Error::InvalidInput { .. })
        ));
        let future = Query::new().with_range(
            now + chrono::Duration::seconds(10),
            now + chrono::Duration::seconds(20),
        );
        assert_eq!(since_for(&future, now).unwrap().as_secs(), 1);
    }
}
