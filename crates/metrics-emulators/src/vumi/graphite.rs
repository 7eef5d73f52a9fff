//! The graphite behind the server: a whisper-like store with one archive, and the
//! `render` call the server makes — `alias(summarize(<path>, '<interval>', '<agg>',
//! <align_to_from>), '<m>')` — with graphite-web 0.9's `summarize` semantics.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::pytime::{graphite_parse_offset, graphite_parse_time};

/// One graphite path's data: slot start (unix seconds) → the values written there.
#[derive(Clone, Debug, Default)]
pub(crate) struct PathData {
    slots: BTreeMap<i64, Slot>,
}

#[derive(Clone, Debug)]
struct Slot {
    /// Values fired into this slot, combined by `aggregator` (as Vumi's metric aggregators
    /// combine the values of one bucket before writing it).
    values: Vec<f64>,
    aggregator: Option<String>,
}

impl Slot {
    fn value(&self) -> f64 {
        let values = &self.values;
        match self.aggregator.as_deref() {
            Some("sum") => values.iter().sum(),
            Some("avg") => {
                #[allow(clippy::cast_precision_loss, reason = "a slot holds few values")]
                let count = values.len() as f64;
                values.iter().sum::<f64>() / count
            }
            Some("max") => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Some("min") => values.iter().copied().fold(f64::INFINITY, f64::min),
            _ => values.last().copied().unwrap_or(f64::NAN),
        }
    }
}

impl PathData {
    /// Writes a value as whisper does: the slot's old value is replaced.
    pub(crate) fn write(&mut self, slot: i64, value: f64) {
        self.slots.insert(
            slot,
            Slot {
                values: vec![value],
                aggregator: None,
            },
        );
    }

    /// Adds a fired value to its slot, combined with the slot's other fired values.
    pub(crate) fn fire(&mut self, slot: i64, value: f64, aggregator: &str) {
        let entry = self.slots.entry(slot).or_insert_with(|| Slot {
            values: Vec::new(),
            aggregator: Some(aggregator.to_owned()),
        });
        if entry.aggregator.as_deref() != Some(aggregator) {
            entry.values.clear();
            entry.aggregator = Some(aggregator.to_owned());
        }
        entry.values.push(value);
    }

    /// Every stored point, oldest first.
    pub(crate) fn points(&self) -> Vec<(i64, f64)> {
        self.slots.iter().map(|(t, s)| (*t, s.value())).collect()
    }
}

/// A summarize function graphite knows.
fn aggregate(func: &str, bucket: &[f64]) -> f64 {
    match func {
        "avg" => {
            #[allow(clippy::cast_precision_loss, reason = "as Python's float(len(bucket))")]
            let count = bucket.len() as f64;
            bucket.iter().sum::<f64>() / count
        }
        "last" => bucket[bucket.len() - 1],
        "max" => bucket.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "min" => bucket.iter().copied().fold(f64::INFINITY, f64::min),
        _ => bucket.iter().sum(),
    }
}

/// One render target after the server built it.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) path: String,
    pub(crate) interval: String,
    pub(crate) func: String,
    pub(crate) align_to_from: String,
    pub(crate) alias: String,
}

impl Target {
    /// The target expression as the server sends it to graphite.
    pub(crate) fn expression(&self) -> String {
        format!(
            "alias(summarize({}, '{}', '{}', {}), '{}')",
            self.path, self.interval, self.func, self.align_to_from, self.alias
        )
    }
}

/// A rendered series: `(value, timestamp)` pairs, as graphite's JSON `datapoints`.
pub(crate) type Datapoints = Vec<(Option<f64>, i64)>;

/// What graphite did with a render request.
pub(crate) enum Render {
    /// `(alias, datapoints)` for each target that has a series.
    Ok(Vec<(String, Datapoints)>),
    /// Graphite answered 4xx/5xx.
    Error,
}

/// Characters that change the meaning of the target expression (or make it a glob, which
/// this graphite does not expand); graphite answers such targets with an error.
fn breaks_expression(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_whitespace()
            || matches!(
                c,
                '\'' | '"' | '(' | ')' | ',' | '*' | '?' | '[' | ']' | '{' | '}'
            )
    })
}

/// Renders `targets` over `from`..`until` from `store` at `step` seconds per slot.
pub(crate) fn render(
    store: &HashMap<String, PathData>,
    targets: &[Target],
    from: &str,
    until: &str,
    step: i64,
    now: DateTime<Utc>,
) -> Render {
    let (Some(from), Some(until)) = (
        graphite_parse_time(from, now),
        graphite_parse_time(until, now),
    ) else {
        return Render::Error;
    };
    let (start, end) = if from <= until {
        (from, until)
    } else {
        (until, from)
    };
    if start == end {
        // graphite: "Invalid empty time range".
        return Render::Error;
    }
    let mut results = Vec::new();
    for target in targets {
        if breaks_expression(&target.path) || breaks_expression(&target.alias) {
            return Render::Error;
        }
        let Some(interval) = graphite_parse_offset(&target.interval)
            .map(|d| d.num_seconds())
            .filter(|s| *s > 0)
        else {
            return Render::Error;
        };
        let align = match target.align_to_from.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => return Render::Error,
        };
        let Some(data) = store.get(&target.path) else {
            continue;
        };
        let Some((series_start, series_end)) = whisper_window(start, end, step, now) else {
            continue;
        };
        let points = summarize(
            data,
            series_start,
            series_end,
            interval,
            &target.func,
            align,
        );
        results.push((target.alias.clone(), points));
    }
    Render::Ok(results)
}

/// whisper's `fetch`: the slots `[start, end)` it returns for `from`..`until`, or `None`
/// when the whole range is in the future.
fn whisper_window(
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    step: i64,
    now: DateTime<Utc>,
) -> Option<(i64, i64)> {
    let now = now.timestamp();
    let from = from.timestamp();
    let until = until.timestamp().min(now);
    if from > now {
        return None;
    }
    let start = from - from.rem_euclid(step) + step;
    let mut end = until - until.rem_euclid(step) + step;
    if start == end {
        end += step;
    }
    Some((start, end.max(start)))
}

/// graphite-web 0.9's `summarize`, over the stored slots only (an empty slot is `None`,
/// which `summarize` skips, so only stored slots can fill a bucket).
fn summarize(
    data: &PathData,
    start: i64,
    end: i64,
    interval: i64,
    func: &str,
    align_to_from: bool,
) -> Datapoints {
    let mut buckets: HashMap<i64, Vec<f64>> = HashMap::new();
    for (&timestamp, slot) in data.slots.range(start..end) {
        let key = if align_to_from {
            (timestamp - start) / interval
        } else {
            timestamp - timestamp.rem_euclid(interval)
        };
        buckets.entry(key).or_default().push(slot.value());
    }
    let (new_start, new_end) = if align_to_from {
        (start, end)
    } else {
        (
            start - start.rem_euclid(interval),
            end - end.rem_euclid(interval) + interval,
        )
    };
    let capacity = usize::try_from((new_end - new_start) / interval + 1).unwrap_or(0);
    let mut points = Vec::with_capacity(capacity);
    let mut timestamp = new_start;
    while timestamp < new_end {
        let key = if align_to_from {
            (timestamp - start) / interval
        } else {
            timestamp
        };
        let value = buckets
            .get(&key)
            .filter(|bucket| !bucket.is_empty())
            .map(|bucket| aggregate(func, bucket));
        points.push((value, timestamp));
        timestamp += interval;
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(points: &[(i64, f64)]) -> PathData {
        let mut data = PathData::default();
        for (t, v) in points {
            data.write(*t, *v);
        }
        data
    }

    #[test]
    fn summarize_aligns_to_the_interval() {
        let data = store(&[(0, 1.0), (10, 2.0), (60, 4.0), (70, 8.0), (130, 16.0)]);
        let sum = summarize(&data, 0, 180, 60, "sum", false);
        assert_eq!(
            sum,
            vec![
                (Some(3.0), 0),
                (Some(12.0), 60),
                (Some(16.0), 120),
                (None, 180)
            ]
        );
        let avg = summarize(&data, 0, 180, 60, "avg", false);
        assert_eq!(avg[0].0, Some(1.5));
        assert_eq!(summarize(&data, 0, 180, 60, "last", false)[1].0, Some(8.0));
        assert_eq!(summarize(&data, 0, 180, 60, "max", false)[1].0, Some(8.0));
        assert_eq!(summarize(&data, 0, 180, 60, "min", false)[1].0, Some(4.0));
    }

    #[test]
    fn summarize_aligns_to_from() {
        let data = store(&[(30, 1.0), (80, 2.0), (100, 4.0)]);
        let points = summarize(&data, 30, 150, 60, "sum", true);
        assert_eq!(points, vec![(Some(3.0), 30), (Some(4.0), 90)]);
    }

    #[test]
    fn fired_values_combine_by_aggregator() {
        let mut data = PathData::default();
        data.fire(0, 1.0, "sum");
        data.fire(0, 2.0, "sum");
        data.fire(10, 1.0, "avg");
        data.fire(10, 4.0, "avg");
        assert_eq!(data.points(), vec![(0, 3.0), (10, 2.5)]);
    }
}
