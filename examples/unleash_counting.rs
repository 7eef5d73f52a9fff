//! Counting Unleash flag evaluations from many tasks with the background
//! [`MetricsRecorder`], then reading them back through the admin API: the read-back must
//! equal the counts exactly, none lost and none counted twice.
//!
//! Every task tallies what it evaluated on its own, so that the sum of the tallies is the
//! truth to compare with. The recorder flushes in the background while the tasks count;
//! [`flush`](MetricsRecorder::flush) sends on demand and says what happened
//! ([`Flushed`]); [`shutdown`](MetricsRecorder::shutdown) sends the rest and hands back in
//! its [`ShutdownReport`] whatever it could not deliver. The server books a bucket under the
//! hour it stopped in, so the read-back asks for the last two hours: a run that crosses the
//! hour is read back whole.
//!
//! Run with `cargo run --example unleash_counting [TASKS] [EVALUATIONS_PER_TASK]`
//! (default 8 × 2 000) against the Unleash emulator. Against a real server, build the
//! client with `UnleashClientBuilder::from_env()` and a backend and an admin token; the
//! real server writes metrics every few seconds, so read back after a short wait there.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_emulators::unleash::UnleashEmulator;
use metrics_hub::unleash::{
    Flushed, MetricsRecorder, RecorderConfig, ShutdownReport, UnleashClient,
};

/// Any error of the program.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The flags the tasks evaluate; they must exist on the server (unknown flags are listed
/// under unknown flags, not counted).
pub const FLAGS: [&str; 3] = ["new-checkout", "dark-mode", "button-color"];

/// Evaluations of one flag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Evaluations to enabled.
    pub yes: u64,
    /// Evaluations to disabled.
    pub no: u64,
    /// Evaluations per variant handed out.
    pub variants: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, other: &Self) {
        self.yes += other.yes;
        self.no += other.no;
        for (variant, count) in &other.variants {
            *self.variants.entry(variant.clone()).or_default() += count;
        }
    }
}

/// What [`count_and_read_back`] counted, what the recorder says it sent, and what the
/// server reports.
#[derive(Debug, Default)]
pub struct Counting {
    /// Per flag, the sum of the tasks' own tallies.
    pub counted: BTreeMap<String, Tally>,
    /// Per flag, what the admin API reports for this application.
    pub read_back: BTreeMap<String, Tally>,
    /// Evaluations the on-demand flush sent (0 if the background had just sent them).
    pub sent_by_flush: u64,
    /// Evaluations the shutdown sent.
    pub sent_at_shutdown: u64,
    /// Evaluations the recorder delivered in all, by its own status.
    pub evaluations_sent: u64,
    /// Buckets it delivered them in.
    pub buckets_sent: u64,
}

impl Counting {
    /// Every evaluation counted, all flags together.
    pub fn total(&self) -> u64 {
        self.counted.values().map(|t| t.yes + t.no).sum()
    }
}

/// One simulated request of task `task`: evaluates every flag, counts each evaluation with
/// the recorder and in the task's own tally.
fn serve_request(
    recorder: &MetricsRecorder,
    tally: &mut BTreeMap<String, Tally>,
    task: u32,
    request: u32,
) {
    let mut count = |flag: &str, enabled: bool, variant: Option<&str>| {
        match variant {
            Some(variant) => recorder.count_variant(flag, enabled, variant),
            None => recorder.count(flag, enabled),
        }
        let entry = tally.entry(flag.to_owned()).or_default();
        if enabled {
            entry.yes += 1;
        } else {
            entry.no += 1;
        }
        if let Some(variant) = variant {
            *entry.variants.entry(variant.to_owned()).or_default() += 1;
        }
    };
    count(FLAGS[0], !(request + task).is_multiple_of(4), None);
    count(FLAGS[1], request.is_multiple_of(3), None);
    let enabled = !request.is_multiple_of(10);
    let variant = match (enabled, request % 2) {
        (false, _) => "disabled", // what the SDKs report for a flag that is off
        (true, 0) => "blue",
        (true, _) => "green",
    };
    count(FLAGS[2], enabled, Some(variant));
}

/// Counts `tasks × evaluations_per_task` requests (three evaluations each) from `tasks`
/// concurrent tasks through one recorder, flushes once midway, shuts down, and reads every
/// flag's counts for this application back through the admin API.
///
/// The client needs a backend token (to send) and an admin token (to read back).
///
/// # Errors
///
/// When the recorder cannot start, a task panics, the shutdown could not deliver everything,
/// or a read-back fails. A read-back that differs from the counts is not an error: compare
/// [`Counting::counted`] and [`Counting::read_back`].
pub async fn count_and_read_back(
    client: &UnleashClient,
    tasks: u32,
    evaluations_per_task: u32,
) -> Result<Counting, BoxError> {
    let recorder = client.start_recorder(
        RecorderConfig::new()
            .with_interval(Duration::from_millis(50))
            .with_jitter(Duration::from_millis(10)),
    )?;
    let mut handles = Vec::new();
    for task in 0..tasks {
        let recorder = recorder.clone();
        handles.push(tokio::spawn(async move {
            let mut tally = BTreeMap::new();
            for request in 0..evaluations_per_task {
                serve_request(&recorder, &mut tally, task, request);
                if request % 100 == 99 {
                    // Other work of a real request handler; the background flush runs meanwhile.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            tally
        }));
    }

    let mut counting = Counting::default();
    let half = handles.split_off(handles.len() / 2);
    for (round, handles) in [handles, half].into_iter().enumerate() {
        for handle in handles {
            for (flag, tally) in handle.await? {
                counting.counted.entry(flag).or_default().add(&tally);
            }
        }
        if round == 0 {
            // Sending on demand, while the other half still counts.
            counting.sent_by_flush = match recorder.flush().await? {
                Flushed::Sent(evaluations) => evaluations,
                Flushed::Deferred { evaluations, .. } => {
                    println!("the server asked to wait; {evaluations} evaluations kept");
                    0
                }
                other => other.sent(),
            };
        }
    }

    let report: ShutdownReport = recorder.shutdown().await;
    if let Some(unsent) = &report.unsent {
        eprintln!(
            "{} evaluations handed back (send them later with UnleashClient::send_metrics)",
            unsent.evaluations()
        );
    }
    counting.sent_at_shutdown = report.into_result()?;
    let status = recorder.status();
    counting.evaluations_sent = status.evaluations_sent;
    counting.buckets_sent = status.buckets_sent;

    for flag in FLAGS {
        let raw = client.feature_metrics_raw(flag, 2).await?;
        let mut tally = Tally::default();
        for row in raw
            .data
            .iter()
            .filter(|row| row.app_name == client.app_name())
        {
            tally.yes += row.yes;
            tally.no += row.no;
            for (variant, count) in row.variants.iter().flatten() {
                *tally.variants.entry(variant.clone()).or_default() += count;
            }
        }
        counting.read_back.insert(flag.to_owned(), tally);
    }
    Ok(counting)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let tasks: u32 = args.next().map_or(Ok(8), |a| a.parse())?;
    let per_task: u32 = args.next().map_or(Ok(2_000), |a| a.parse())?;

    let unleash = UnleashEmulator::start().await?;
    for flag in FLAGS {
        unleash.add_flag(flag);
    }
    let client = UnleashClient::builder()
        .with_url(unleash.base_url())
        .with_api_token(UnleashEmulator::CLIENT_TOKEN)
        .with_admin_token(UnleashEmulator::ADMIN_TOKEN)
        .with_app_name("checkout-web")
        .with_instance_id("checkout-web-1")
        .build()?;

    let counting = count_and_read_back(&client, tasks, per_task).await?;
    println!(
        "{} evaluations from {tasks} tasks: {} sent in {} bucket(s) ({} by the flush, {} at \
         shutdown, the rest in the background)",
        counting.total(),
        counting.evaluations_sent,
        counting.buckets_sent,
        counting.sent_by_flush,
        counting.sent_at_shutdown
    );
    println!(
        "{:<14} {:>15} {:>15}  variants",
        "flag", "counted yes/no", "read yes/no"
    );
    for (flag, counted) in &counting.counted {
        let read = &counting.read_back[flag];
        println!(
            "{flag:<14} {:>15} {:>15}  {:?}{}",
            format!("{}/{}", counted.yes, counted.no),
            format!("{}/{}", read.yes, read.no),
            read.variants,
            if read == counted { "" } else { "  MISMATCH" }
        );
    }
    if counting.read_back != counting.counted {
        return Err("the server's counts differ from the counts made".into());
    }
    println!("the read-back equals the counts");
    Ok(())
}
