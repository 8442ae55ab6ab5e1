//! A [`Summary`] of the request log files over a range (today, 7 or 30 days): per
//! provider, model, site and member, over time, with estimated cost and today's budgets.
//!
//! What counts as a request: every record with a provider (chat on every route, voice,
//! search, ChatKit, WebSocket chats, cache hits), and every request refused or failed
//! before it reached one (origin, token, rate limit, size, bad body), which shows as
//! "(not routed)". Preflights (`OPTIONS`) never count: the browser sends one before a
//! request, refused or not, so counting both would count one request twice; nor do
//! answered `GET`s of models, health and pages, or a path that is no route (404), none
//! of which reaches a model.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::prices::{PriceLookup, PriceTable, PRICES_AS_OF};
use super::records::{self, Day, Line, SECONDS_PER_DAY};
use super::tally::{round_usd, sort_rows, Counted, Row, Tally};
use crate::config::Config;

/// The provider row of requests refused before a provider was chosen.
pub const NOT_ROUTED: &str = "(not routed)";
/// The site row of requests without an `Origin` (scripts, curl, the SDKs).
pub const NO_ORIGIN: &str = "(no origin)";

/// The days a summary covers, ending today (UTC, as the log files' days are).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Range {
    #[serde(rename = "today")]
    Today,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

impl Range {
    pub fn parse(text: &str) -> Result<Range, String> {
        match text {
            "today" | "1d" => Ok(Range::Today),
            "7d" | "week" => Ok(Range::Week),
            "30d" | "month" => Ok(Range::Month),
            other => Err(format!("`{other}` is not a range: use today, 7d or 30d")),
        }
    }

    pub fn days(self) -> i64 {
        match self {
            Range::Today => 1,
            Range::Week => 7,
            Range::Month => 30,
        }
    }

    /// Hours for a day, quarter days for a week, days for a month: 24 to 30 bars.
    fn bucket_s(self) -> i64 {
        match self {
            Range::Today => 3600,
            Range::Week => 6 * 3600,
            Range::Month => SECONDS_PER_DAY,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub range: Range,
    /// The first second covered (midnight UTC) and now, RFC 3339.
    pub from: String,
    pub to: String,
    pub totals: Row,
    pub providers: Vec<Row>,
    pub models: Vec<ModelRow>,
    pub sites: Vec<Row>,
    /// Per member (team mode); empty when no request carried a member's token.
    pub members: Vec<Row>,
    /// Requests, tokens and cost over time, oldest first, `bucket_s` apart.
    pub buckets: Vec<Bucket>,
    pub bucket_s: i64,
    /// Each configured budget and today's spend against it.
    pub budgets: Vec<BudgetView>,
    pub prices_as_of: &'static str,
    /// Days the log files are kept: a longer range shows only those.
    pub retention_days: usize,
    /// Lines read, and those skipped because they were not records.
    pub lines: u64,
    pub skipped_lines: u64,
}

#[derive(Debug, Serialize)]
pub struct ModelRow {
    pub provider: String,
    #[serde(flatten)]
    pub row: Row,
    /// `None`: no price known ("no price" in the view, never $0).
    pub price: Option<PriceLookup>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Bucket {
    pub start: String,
    pub requests: u64,
    pub errors: u64,
    pub cached: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

#[derive(Debug, Serialize)]
pub struct BudgetView {
    pub provider: String,
    pub daily_usd: f64,
    pub stop_at_budget: bool,
    pub spent_today_usd: f64,
    /// Midnight UTC, when today's spend starts again from zero.
    pub resets_at: String,
}

/// Summarises the log files in `dir` (none: an empty summary) over `range`, ending at
/// `now` (seconds since the epoch).
pub fn summarize(dir: Option<&Path>, config: &Config, range: Range, now: i64) -> Summary {
    let today: Day = now.div_euclid(SECONDS_PER_DAY);
    let first = today - range.days() + 1;
    let start = first * SECONDS_PER_DAY;
    let end = (today + 1) * SECONDS_PER_DAY;
    let prices = PriceTable::new(config);
    let files = dir.map_or_else(Vec::new, |dir| records::day_files(dir, first, today));
    // The days are read on as many threads as there are cores (up to 4), then added up.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(files.len().max(1));
    let mut parts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (files, prices) = (&files, prices.clone());
                scope.spawn(move || {
                    let mut acc = Accumulator::new(prices, range, start, today);
                    for (_, path) in files.iter().skip(t).step_by(threads) {
                        acc.read(path, end);
                    }
                    acc
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a usage thread does not panic"))
            .collect::<Vec<_>>()
    });
    let mut acc = parts.pop().expect("one thread at least");
    for part in parts {
        acc.merge(part);
    }
    acc.finish(config, range, now)
}

struct Accumulator {
    prices: PriceTable,
    start: i64,
    bucket_s: i64,
    today: Day,
    total: Tally,
    providers: HashMap<String, ProviderTally>,
    sites: HashMap<String, Tally>,
    members: HashMap<String, Tally>,
    buckets: Vec<Bucket>,
    spent_today: HashMap<String, f64>,
    lines: u64,
    skipped: u64,
}

#[derive(Default)]
struct ProviderTally {
    tally: Tally,
    models: HashMap<String, (Tally, Option<PriceLookup>)>,
}

impl Accumulator {
    fn new(prices: PriceTable, range: Range, start: i64, today: Day) -> Self {
        let bucket_s = range.bucket_s();
        let buckets = (0..range.days() * SECONDS_PER_DAY / bucket_s)
            .map(|i| Bucket {
                start: records::rfc3339(start + i * bucket_s),
                ..Bucket::default()
            })
            .collect();
        Accumulator {
            prices,
            start,
            bucket_s,
            today,
            total: Tally::default(),
            providers: HashMap::new(),
            sites: HashMap::new(),
            members: HashMap::new(),
            buckets,
            spent_today: HashMap::new(),
            lines: 0,
            skipped: 0,
        }
    }

    /// Adds one day's file. One that cannot be read (removed by retention meanwhile)
    /// has no records.
    fn read(&mut self, path: &Path, end: i64) {
        let Ok(mut bytes) = std::fs::read(path) else {
            return;
        };
        let ranges: Vec<_> = records::line_ranges(&bytes).collect();
        for range in ranges {
            self.lines += 1;
            match Line::parse_in_place(&mut bytes[range]) {
                Some(line) => self.add(&line, end),
                None => self.skipped += 1,
            }
        }
    }

    /// Adds what another thread counted.
    fn merge(&mut self, other: Accumulator) {
        self.total.merge(other.total);
        for (id, p) in other.providers {
            let mine = get_or_default(&mut self.providers, &id);
            mine.tally.merge(p.tally);
            for (model, (tally, price)) in p.models {
                let (slot, _) = mine
                    .models
                    .entry(model)
                    .or_insert_with(|| (Tally::default(), price));
                slot.merge(tally);
            }
        }
        for (site, tally) in other.sites {
            get_or_default(&mut self.sites, &site).merge(tally);
        }
        for (member, tally) in other.members {
            get_or_default(&mut self.members, &member).merge(tally);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            mine.requests += theirs.requests;
            mine.errors += theirs.errors;
            mine.cached += theirs.cached;
            mine.input_tokens += theirs.input_tokens;
            mine.output_tokens += theirs.output_tokens;
            mine.cost_usd += theirs.cost_usd;
        }
        for (provider, usd) in other.spent_today {
            *get_or_default(&mut self.spent_today, &provider) += usd;
        }
        self.lines += other.lines;
        self.skipped += other.skipped;
    }

    fn add(&mut self, line: &Line<'_>, end: i64) {
        if &*line.method == "OPTIONS" {
            return;
        }
        let Some(t) = records::unix_seconds(&line.time) else {
            self.skipped += 1;
            return;
        };
        if t < self.start || t >= end {
            return;
        }
        let provider = match line.provider.as_deref() {
            Some(p) => p,
            None if line.failed() && !matches!(line.status, 404 | 405) => NOT_ROUTED,
            None => return,
        };
        let model = line.model.as_deref().unwrap_or_default();
        let p = get_or_default(&mut self.providers, provider);
        let counted = if provider == NOT_ROUTED {
            let counted = Counted::of(line, None);
            Counted {
                unpriced: false,
                ..counted
            }
        } else {
            if !p.models.contains_key(model) {
                let price = self.prices.lookup(provider, model);
                p.models
                    .insert(model.to_string(), (Tally::default(), price));
            }
            let (tally, price) = p.models.get_mut(model).expect("inserted above");
            let counted = Counted::of(line, price.as_ref());
            tally.add(&counted);
            counted
        };
        p.tally.add(&counted);
        self.total.add(&counted);
        let site = line.origin.as_deref().unwrap_or(NO_ORIGIN);
        get_or_default(&mut self.sites, site).add(&counted);
        if let Some(member) = &line.member {
            get_or_default(&mut self.members, member).add(&counted);
        }
        if let Some(b) = self
            .buckets
            .get_mut(((t - self.start) / self.bucket_s) as usize)
        {
            b.requests += 1;
            b.errors += u64::from(counted.failed);
            b.cached += u64::from(counted.cached);
            b.input_tokens += counted.input_tokens;
            b.output_tokens += counted.output_tokens;
            b.cost_usd += counted.cost;
        }
        if t.div_euclid(SECONDS_PER_DAY) == self.today && counted.cost > 0.0 {
            *get_or_default(&mut self.spent_today, provider) += counted.cost;
        }
    }

    fn finish(self, config: &Config, range: Range, now: i64) -> Summary {
        let mut providers = Vec::with_capacity(self.providers.len());
        let mut models = Vec::new();
        for (id, p) in self.providers {
            for (model, (tally, price)) in p.models {
                models.push(ModelRow {
                    provider: id.clone(),
                    row: tally.into_row(model),
                    price,
                });
            }
            providers.push(p.tally.into_row(id));
        }
        sort_rows(&mut providers);
        models.sort_by(|a, b| {
            b.row
                .cost_usd
                .total_cmp(&a.row.cost_usd)
                .then(b.row.requests.cmp(&a.row.requests))
                .then((&a.provider, &a.row.name).cmp(&(&b.provider, &b.row.name)))
        });
        let mut sites: Vec<Row> = self
            .sites
            .into_iter()
            .map(|(site, tally)| tally.into_row(site))
            .collect();
        sort_rows(&mut sites);
        let mut members: Vec<Row> = self
            .members
            .into_iter()
            .map(|(member, tally)| tally.into_row(member))
            .collect();
        sort_rows(&mut members);
        let mut buckets = self.buckets;
        for b in &mut buckets {
            b.cost_usd = round_usd(b.cost_usd);
        }
        let resets_at = records::rfc3339((self.today + 1) * SECONDS_PER_DAY);
        let budgets = config
            .usage
            .budgets
            .iter()
            .map(|(provider, b)| BudgetView {
                provider: provider.clone(),
                daily_usd: b.daily_usd,
                stop_at_budget: b.stop_at_budget,
                spent_today_usd: round_usd(self.spent_today.get(provider).copied().unwrap_or(0.0)),
                resets_at: resets_at.clone(),
            })
            .collect();
        Summary {
            range,
            from: records::rfc3339(self.start),
            to: records::rfc3339(now),
            totals: self.total.into_row("total".into()),
            providers,
            models,
            sites,
            members,
            buckets,
            bucket_s: self.bucket_s,
            budgets,
            prices_as_of: PRICES_AS_OF,
            retention_days: config.log.retention_days,
            lines: self.lines,
            skipped_lines: self.skipped,
        }
    }
}

/// The entry for `key`, made on first sight: the key is copied only then.
fn get_or_default<'m, T: Default>(map: &'m mut HashMap<String, T>, key: &str) -> &'m mut T {
    if !map.contains_key(key) {
        map.insert(key.to_string(), T::default());
    }
    map.get_mut(key).expect("inserted above")
}
