//! A report from the hourly hashes of its period: the groups (configured topics, or the
//! agents in the directory), the hours still kept, read a week at a time and folded into
//! buckets as they arrive, so a long report holds one week of hashes and one open bucket
//! of counters at a time, never every hour at once.

use super::{
    counters::Counters, histogram, time, BucketReport, GroupBy, Precision, Report, ReportQuery,
    TopicDesk, HOUR_MS,
};
use crate::{
    config::SurveyKind,
    error::{Error, Result},
    store::{BucketKey, Store},
};

/// Most figures (buckets × groups) one report may hold: about 1 KB of JSON each.
pub const MAX_CELLS: u64 = 50_000;
/// Hours read per round of pipelines.
const CHUNK_HOURS: usize = 168;

/// The groups of a report and, for each, the survey kinds its figures always show.
async fn groups(
    store: &Store,
    topics: &[TopicDesk],
    by: GroupBy,
) -> Result<(Vec<String>, Vec<Vec<SurveyKind>>)> {
    Ok(match by {
        GroupBy::Topic => topics
            .iter()
            .map(|t| (t.name.clone(), vec![t.survey]))
            .unzip(),
        GroupBy::Agent => {
            let mut kinds: Vec<SurveyKind> = Vec::new();
            for topic in topics {
                if !kinds.contains(&topic.survey) {
                    kinds.push(topic.survey);
                }
            }
            let mut ids: Vec<String> = store.agents().await?.into_iter().map(|a| a.id).collect();
            ids.sort();
            let surveys = vec![kinds; ids.len()];
            (ids, surveys)
        }
    })
}

/// Counters folded bucket by bucket, in time order.
struct Fold<'a> {
    groups: &'a [String],
    surveys: &'a [Vec<SurveyKind>],
    agent: bool,
    /// Bucket starts, clipped to the period.
    starts: Vec<u64>,
    to: u64,
    /// The bucket being filled, and its counters per group.
    open: usize,
    counters: Vec<Counters>,
    done: Vec<BucketReport>,
    totals: Vec<Counters>,
}

impl Fold<'_> {
    fn bucket_of(&self, hour: u64) -> usize {
        self.starts
            .partition_point(|s| *s <= hour)
            .saturating_sub(1)
    }

    /// Closes every bucket before `bucket` (an empty one reads as zeros).
    fn close_until(&mut self, bucket: usize) {
        while self.open < bucket.min(self.starts.len()) {
            let start = self.starts[self.open];
            let end = self.starts.get(self.open + 1).copied().unwrap_or(self.to);
            let counters = std::mem::replace(
                &mut self.counters,
                vec![Counters::default(); self.groups.len()],
            );
            let figures = counters
                .iter()
                .enumerate()
                .map(|(g, c)| {
                    self.totals[g].merge(c);
                    c.figures(&self.groups[g], &self.surveys[g], self.agent)
                })
                .collect();
            self.done.push(BucketReport {
                start,
                end,
                start_iso: time::format_iso(start),
                end_iso: time::format_iso(end),
                groups: figures,
            });
            self.open += 1;
        }
    }
}

pub(super) async fn report(
    store: &Store,
    topics: &[TopicDesk],
    keep_ms: u64,
    query: &ReportQuery,
    now_ms: u64,
) -> Result<Report> {
    let (groups, surveys) = groups(store, topics, query.by).await?;
    let mut starts = Vec::new();
    let mut start = query.bucket.start_of(query.from);
    while start < query.to {
        starts.push(start.max(query.from));
        start += query.bucket.len_ms();
    }
    let cells = (starts.len() as u64).saturating_mul(groups.len() as u64);
    if cells > MAX_CELLS {
        return Err(Error::bad_request(format!(
            "{} buckets × {} groups: at most {MAX_CELLS} figures; use a larger bucket or a shorter period",
            starts.len(),
            groups.len()
        )));
    }
    let oldest = now_ms.saturating_sub(keep_ms.saturating_add(HOUR_MS));
    let newest = now_ms.saturating_add(time::DAY_MS);
    let hours: Vec<u64> = (query.from..query.to)
        .step_by(HOUR_MS as usize)
        .filter(|h| *h + HOUR_MS > oldest && *h <= newest)
        .collect();
    let mut fold = Fold {
        groups: &groups,
        surveys: &surveys,
        agent: query.by == GroupBy::Agent,
        starts,
        to: query.to,
        open: 0,
        counters: vec![Counters::default(); groups.len()],
        done: Vec::new(),
        totals: vec![Counters::default(); groups.len()],
    };
    for chunk in hours.chunks(CHUNK_HOURS) {
        let keys: Vec<BucketKey> = chunk
            .iter()
            .flat_map(|hour| {
                groups.iter().map(move |group| match query.by {
                    GroupBy::Topic => BucketKey::Topic {
                        hour: *hour,
                        topic: group.clone(),
                    },
                    GroupBy::Agent => BucketKey::Agent {
                        agent: group.clone(),
                        hour: *hour,
                    },
                })
            })
            .collect();
        let hashes = store.report_buckets(&keys).await?;
        for (i, hour) in chunk.iter().enumerate() {
            let bucket = fold.bucket_of(*hour);
            fold.close_until(bucket);
            for g in 0..groups.len() {
                fold.counters[g].add(&hashes[i * groups.len() + g]);
            }
        }
    }
    fold.close_until(usize::MAX);
    let totals = fold
        .totals
        .iter()
        .enumerate()
        .map(|(g, c)| c.figures(&groups[g], &surveys[g], fold.agent))
        .collect();
    Ok(Report {
        from: query.from,
        to: query.to,
        from_iso: time::format_iso(query.from),
        to_iso: time::format_iso(query.to),
        bucket: query.bucket,
        by: query.by,
        precision: Precision {
            percentile_relative: histogram::RELATIVE_PRECISION,
            exact_below_ms: histogram::LINEAR_UNTIL_MS,
        },
        groups: groups.clone(),
        buckets: fold.done,
        totals,
    })
}
