//! Each series' current value, prepared once and written many times: what an exporter keeps
//! between a source's collections.

use std::borrow::{Borrow, Cow};
use std::collections::HashMap;
use std::ops::Range;

use super::{
    Family, Format, LabelSets, Layout, TextWriter, report, reserve_for_the_rest, write_metadata,
    write_timestamp, write_value,
};
use crate::model::{Series, SeriesKind, Unit};

/// The current value of each series, prepared to be written in either text format as many
/// times as asked: names sanitized, series grouped into families, label sets sanitized,
/// sorted and escaped into one block of text each, duplicate label sets and counter values
/// that cannot be totals left out. Writing it then costs copying those blocks and
/// formatting the values, nothing that depends on how the series were built.
///
/// An exporter makes one per source when that source's collection lands and writes them
/// all together with [`write_openmetrics_snapshots`] or [`write_prometheus_snapshots`].
/// Without the samples' times, the text is exactly what
/// [`write_openmetrics_latest`](super::write_openmetrics_latest) and
/// [`write_prometheus_latest`](super::write_prometheus_latest) write for all the snapshots'
/// series in one list; with them, it is what [`write_openmetrics`](super::write_openmetrics)
/// and [`write_prometheus`](super::write_prometheus) write for those series reduced to their
/// newest point that can be a sample. Every rule of
/// [the text formats](super#the-text-formats) holds across snapshots: a family several of
/// them have is written once, name clashes between them are settled as within one list,
/// and a label set two of them have is written once.
///
/// Each series gives its newest point that can be a sample; a series without one writes
/// nothing, as with the `_latest` writers.
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use metrics_core::{Series, SeriesKind, render};
///
/// let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
/// let edge = render::Snapshot::new(&[Series::new("coopr_queue_tasks", SeriesKind::Gauge)
///     .with_label("source", "edge")
///     .with_point(at, 3.0)]);
/// let core = render::Snapshot::new(&[Series::new("coopr_queue_tasks", SeriesKind::Gauge)
///     .with_label("source", "core")
///     .with_point(at, 5.0)]);
/// let mut out = String::new();
/// render::write_openmetrics_snapshots(&mut out, &[&edge, &core], false);
/// assert_eq!(
///     out,
///     concat!(
///         "# TYPE coopr_queue_tasks gauge\n",
///         "coopr_queue_tasks{source=\"edge\"} 3\n",
///         "coopr_queue_tasks{source=\"core\"} 5\n",
///         "# EOF\n",
///     )
/// );
/// let mut out = String::new();
/// render::write_prometheus_snapshots(&mut out, &[&edge], true);
/// assert!(out.ends_with("coopr_queue_tasks{source=\"edge\"} 3 1700000000000\n"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    families: Vec<SnapshotFamily>,
    /// Every sample's label block (`{a="1",b="2"}`, or nothing for no label), one after
    /// another in the order of `samples`.
    labels: String,
    samples: Vec<Sample>,
}

/// A family under its natural name: a clash with another family is settled when the
/// snapshots are written, as it depends on every family written with it.
#[derive(Clone, Debug, PartialEq)]
struct SnapshotFamily {
    name: String,
    kind: SeriesKind,
    unit: Option<Unit>,
    help: Option<String>,
    /// Where its samples end in `samples` (they start where the previous family's end).
    samples_end: usize,
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Where its label block ends in `labels` (it starts where the previous one ends).
    labels_end: usize,
    value: f64,
    /// Milliseconds since the epoch.
    millis: i64,
}

impl Snapshot {
    /// Prepares the newest point of each series; see [`Snapshot`].
    ///
    /// What had to be left out or changed (duplicate label sets, counter values that cannot
    /// be totals, label names that sanitize alike) is one `tracing` warning.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use metrics_core::{Series, SeriesKind, render::Snapshot};
    ///
    /// let at = |s| Utc.timestamp_opt(s, 0).unwrap();
    /// let total = Series::new("jobs", SeriesKind::Counter)
    ///     .with_point(at(60), 5.0)
    ///     .with_point(at(120), -1.0);
    /// let hours = Series::new("uptime_hours", SeriesKind::Gauge)
    ///     .with_point(at(60), 1.0)
    ///     .with_point(at(120), 2.0);
    /// // A counter's newest point that can be a total, every series' newest point.
    /// let snapshot = Snapshot::new(&[total, hours]);
    /// assert_eq!(snapshot.len(), 2);
    /// let mut out = String::new();
    /// metrics_core::render::write_prometheus_snapshots(&mut out, &[snapshot], false);
    /// assert!(out.contains("jobs_total 5\n") && out.contains("uptime_hours 2\n"));
    /// ```
    #[must_use]
    pub fn new(series: &[Series]) -> Self {
        let layout = Layout::grouped(series);
        let mut writer = TextWriter::default();
        let mut snapshot = Self {
            families: Vec::with_capacity(layout.families.len()),
            labels: String::new(),
            samples: Vec::with_capacity(series.len()),
        };
        let mut prepared = 0;
        for (f, family) in layout.families.iter().enumerate() {
            let members = layout.bounds[f]..layout.bounds[f + 1];
            let counter = family.kind == SeriesKind::Counter;
            let (labels_start, samples_start) = (snapshot.labels.len(), snapshot.samples.len());
            let adjusted = writer.adjusted.clone();
            // Hashes only; again, exact, if two label sets may have been the same.
            for exact in [false, true] {
                writer.seen.clear(members.len(), exact);
                for position in members.clone() {
                    prepared += 1;
                    if prepared == super::SIZING_SAMPLE {
                        reserve_for_the_rest(&mut snapshot.labels, 0, prepared, series.len());
                    }
                    let one = &series[layout.member(position)];
                    let Some(point) = writer.newest_point(one, counter) else {
                        continue;
                    };
                    if writer.write_unique_labels(&mut snapshot.labels, &one.labels) {
                        snapshot.samples.push(Sample {
                            labels_end: snapshot.labels.len(),
                            value: point.value,
                            millis: point.time.timestamp_millis(),
                        });
                    }
                }
                if exact || !writer.seen.may_repeat() {
                    break;
                }
                snapshot.labels.truncate(labels_start);
                snapshot.samples.truncate(samples_start);
                writer.adjusted.clone_from(&adjusted);
            }
            snapshot.families.push(SnapshotFamily {
                name: family.name.clone().into_owned(),
                kind: family.kind,
                unit: family.unit.cloned(),
                help: family.help.map(str::to_owned),
                samples_end: snapshot.samples.len(),
            });
        }
        report(&[], &writer.adjusted);
        snapshot
    }

    /// How many samples it writes.
    ///
    /// ```
    /// use metrics_core::{Series, SeriesKind, render::Snapshot};
    ///
    /// let series = Series::new("jobs", SeriesKind::Gauge).with_point(chrono::Utc::now(), 1.0);
    /// let twice = [series.clone(), series];
    /// assert_eq!(Snapshot::new(&twice).len(), 1, "one label set is one sample");
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether it writes no sample (it may still write families' metadata).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Whether `self` and `other` write the same text, with the samples' times (`timestamps`)
    /// or without: an exporter need not write again what has not changed.
    ///
    /// ```
    /// use chrono::{TimeZone, Utc};
    /// use metrics_core::{Series, SeriesKind, render::Snapshot};
    ///
    /// let at = |s| Utc.timestamp_opt(s, 0).unwrap();
    /// let jobs = |s, value| Snapshot::new(&[Series::new("jobs", SeriesKind::Gauge).with_point(at(s), value)]);
    /// assert!(jobs(60, 1.0).same_text(&jobs(120, 1.0), false));
    /// assert!(!jobs(60, 1.0).same_text(&jobs(120, 1.0), true));
    /// assert!(!jobs(60, 1.0).same_text(&jobs(60, 2.0), false));
    /// ```
    #[must_use]
    pub fn same_text(&self, other: &Self, timestamps: bool) -> bool {
        self.families == other.families
            && self.labels == other.labels
            && self.samples.len() == other.samples.len()
            && self.samples.iter().zip(&other.samples).all(|(a, b)| {
                a.labels_end == b.labels_end
                    && a.value.to_bits() == b.value.to_bits()
                    && (!timestamps || a.millis == b.millis)
            })
    }

    /// The samples of family `f`.
    fn family_samples(&self, f: usize) -> Range<usize> {
        let start = f.checked_sub(1).map_or(0, |p| self.families[p].samples_end);
        start..self.families[f].samples_end
    }

    /// Where the label block of sample `s` starts.
    fn labels_start(&self, s: usize) -> usize {
        s.checked_sub(1).map_or(0, |p| self.samples[p].labels_end)
    }
}

/// The snapshots in the OpenMetrics 1.0 text format, ending with `# EOF`, appended to
/// `out`: each sample without its time, or with it (`timestamps`), in seconds. See
/// [`Snapshot`].
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use metrics_core::{Series, SeriesKind, Unit, render};
///
/// let sent = Series::new("outline_bytes", SeriesKind::Counter)
///     .with_unit(Unit::Bytes)
///     .with_point(Utc.timestamp_millis_opt(1_700_000_000_250).unwrap(), 1024.0);
/// let mut out = String::new();
/// render::write_openmetrics_snapshots(&mut out, &[render::Snapshot::new(&[sent])], true);
/// assert_eq!(
///     out,
///     concat!(
///         "# TYPE outline_bytes counter\n",
///         "# UNIT outline_bytes bytes\n",
///         "outline_bytes_total 1024 1700000000.250\n",
///         "# EOF\n",
///     )
/// );
/// ```
pub fn write_openmetrics_snapshots<S: Borrow<Snapshot>>(
    out: &mut String,
    snapshots: &[S],
    timestamps: bool,
) {
    write_snapshots(out, snapshots, Format::OpenMetrics, timestamps);
}

/// The snapshots in the Prometheus text format 0.0.4, appended to `out`: each sample
/// without its time, or with it (`timestamps`), in milliseconds. See [`Snapshot`].
///
/// A label set that two snapshots both have is written once, from the first:
///
/// ```
/// use metrics_core::{Series, SeriesKind, render};
///
/// let jobs = |value| {
///     render::Snapshot::new(&[Series::new("jobs", SeriesKind::Gauge)
///         .with_label("queue", "mail")
///         .with_point(chrono::Utc::now(), value)])
/// };
/// let mut out = String::new();
/// render::write_prometheus_snapshots(&mut out, &[jobs(3.0), jobs(4.0)], false);
/// assert_eq!(out, "# TYPE jobs gauge\njobs{queue=\"mail\"} 3\n");
/// ```
pub fn write_prometheus_snapshots<S: Borrow<Snapshot>>(
    out: &mut String,
    snapshots: &[S],
    timestamps: bool,
) {
    write_snapshots(out, snapshots, Format::Prometheus, timestamps);
}

fn write_snapshots<S: Borrow<Snapshot>>(
    out: &mut String,
    snapshots: &[S],
    format: Format,
    timestamps: bool,
) {
    // The families across snapshots, in order of first appearance, as one list of all their
    // series would have them.
    let mut families: Vec<Family<'_>> = Vec::new();
    // For each, where its samples are: (snapshot, family of that snapshot).
    let mut parts: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut index: HashMap<(&str, SeriesKind), usize> = HashMap::new();
    let mut size = 0;
    for (s, snapshot) in snapshots.iter().enumerate() {
        let snapshot = snapshot.borrow();
        for (f, family) in snapshot.families.iter().enumerate() {
            let g = *index
                .entry((family.name.as_str(), family.kind))
                .or_insert_with(|| {
                    families.push(Family {
                        name: Cow::Borrowed(&family.name),
                        kind: family.kind,
                        unit: None,
                        help: None,
                    });
                    parts.push(Vec::new());
                    families.len() - 1
                });
            let entry = &mut families[g];
            if entry.unit.is_none() {
                entry.unit = family.unit.as_ref();
            }
            if entry.help.is_none() {
                entry.help = family.help.as_deref();
            }
            parts[g].push((s, f));
            // Name, `_total`, a value, a timestamp, spaces and newline: values and times
            // rarely take more than 20 bytes, so the text seldom grows.
            let per_sample = family.name.len() + 6 + 22 + if timestamps { 21 } else { 0 };
            size += snapshot.family_samples(f).len() * per_sample;
        }
        size += snapshot.labels.len();
    }
    let renamed = super::rename_clashing_families(&mut families);
    out.reserve(size + families.len() * 256);

    let mut writer = SampleWriter {
        format,
        timestamps,
        timestamp: (None, String::new()),
        seen: LabelSets::default(),
        duplicate_series: 0,
    };
    for (family, parts) in families.iter().zip(&parts) {
        let mut name = family.name.to_string();
        if family.kind == SeriesKind::Counter {
            name.push_str("_total");
        }
        if let [(s, f)] = parts[..] {
            // Within one snapshot the label sets are known to differ.
            write_metadata(out, family, format);
            let snapshot = snapshots[s].borrow();
            writer.write(out, &name, snapshot, snapshot.family_samples(f), false);
            continue;
        }
        let family_start = out.len();
        let members: usize = parts
            .iter()
            .map(|&(s, f)| snapshots[s].borrow().family_samples(f).len())
            .sum();
        let duplicates = writer.duplicate_series;
        // Hashes only; again, exact, if two label sets may have been the same.
        for exact in [false, true] {
            write_metadata(out, family, format);
            writer.seen.clear(members, exact);
            for &(s, f) in parts {
                let snapshot = snapshots[s].borrow();
                writer.write(out, &name, snapshot, snapshot.family_samples(f), true);
            }
            if exact || !writer.seen.may_repeat() {
                break;
            }
            out.truncate(family_start);
            writer.duplicate_series = duplicates;
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    let adjusted = super::Adjustments {
        duplicate_series: writer.duplicate_series,
        ..super::Adjustments::default()
    };
    report(&renamed, &adjusted);
}

/// Writes sample lines from snapshots.
struct SampleWriter {
    format: Format,
    timestamps: bool,
    /// The last timestamp written, and its text.
    timestamp: (Option<i64>, String),
    /// The label sets of the family so far, when it comes from several snapshots.
    seen: LabelSets,
    duplicate_series: usize,
}

impl SampleWriter {
    /// The lines of `snapshot`'s `samples`, each `name{labels} value[ time]`; with `check`,
    /// a line whose label set the family has already is left out.
    fn write(
        &mut self,
        out: &mut String,
        name: &str,
        snapshot: &Snapshot,
        samples: Range<usize>,
        check: bool,
    ) {
        let mut labels_start = snapshot.labels_start(samples.start);
        for sample in &snapshot.samples[samples] {
            let labels = &snapshot.labels[labels_start..sample.labels_end];
            labels_start = sample.labels_end;
            let line = out.len();
            out.push_str(name);
            let block = out.len();
            out.push_str(labels);
            if check && !self.seen.insert(out, block, out.len()) {
                out.truncate(line);
                self.duplicate_series += 1;
                continue;
            }
            write_value(out, sample.value);
            if self.timestamps {
                // Samples of one collection mostly share a time: format it once.
                if self.timestamp.0 != Some(sample.millis) {
                    self.timestamp.1.clear();
                    write_timestamp(&mut self.timestamp.1, sample.millis, self.format);
                    self.timestamp.0 = Some(sample.millis);
                }
                out.push(' ');
                out.push_str(&self.timestamp.1);
            }
            out.push('\n');
        }
    }
}
