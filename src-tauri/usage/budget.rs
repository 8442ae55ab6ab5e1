//! Daily budgets per provider (`usage.budgets`): today's spend, kept as records finish (a
//! [`RecordObserver`]) and read back from today's log file when a gateway starts or its
//! settings change, so a restart still knows what the day has cost. At 80 % a warning
//! (the log, and a desktop notification through [`BudgetMeter::take_alerts`]); at 100 %,
//! with `stop_at_budget`, the provider's requests are refused until midnight UTC.
//!
//! Refused with 429 and `Retry-After` (the seconds to midnight), not 402: a 429 is what
//! prototypes and SDKs already handle as "not now, later", and what OpenAI itself answers
//! when a spending limit is reached (`insufficient_quota`); 402 has no agreed meaning and
//! clients treat it as an unknown failure.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::prices::{Price, PriceTable};
use super::records::{self, Day, Line, SECONDS_PER_DAY};
use crate::config::{BudgetSection, Config};
use crate::error::GatewayError;
use crate::request_log::{Record, RecordObserver, RequestLog};

/// The share of a budget at which the warning goes out.
const WARN_AT: f64 = 0.8;

/// Today's spend of the providers that have a budget. Cheap to clone.
#[derive(Clone)]
pub struct BudgetMeter {
    inner: Arc<Inner>,
}

struct Inner {
    prices: PriceTable,
    budgets: HashMap<String, BudgetSection>,
    today: Mutex<Today>,
}

struct Today {
    day: Day,
    spend: HashMap<String, Spend>,
    /// Records counted as they finished before today's file was read, by id, so the
    /// file does not count them again; `None` once it has been read.
    counted_live: Option<HashSet<String>>,
    alerts: Vec<BudgetAlert>,
}

#[derive(Default)]
struct Spend {
    usd: f64,
    /// Each model's price, looked up once a day.
    prices: HashMap<String, Option<Price>>,
    warned: bool,
    reached: bool,
}

/// A budget crossing 80 % or 100 % today, for a desktop notification.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetAlert {
    pub provider: String,
    /// 80 or 100.
    pub percent: u8,
    pub spent_usd: f64,
    pub daily_usd: f64,
    pub stop_at_budget: bool,
}

impl BudgetAlert {
    /// "openai: 82 % of today's budget": a notification's title.
    pub fn title(&self) -> String {
        match self.percent {
            100 => format!("{} reached today's budget", self.provider),
            percent => format!("{} used {percent} % of today's budget", self.provider),
        }
    }

    /// What happens next, in plain words.
    pub fn body(&self) -> String {
        let spent = format!(
            "{} of {} spent today.",
            usd(self.spent_usd),
            usd(self.daily_usd)
        );
        match (self.percent, self.stop_at_budget) {
            (100, true) => format!("{spent} Its requests are refused until midnight UTC."),
            (_, true) => {
                format!("{spent} At the budget its requests will be refused until midnight UTC.")
            }
            _ => format!("{spent} Requests go on (stop at budget is off)."),
        }
    }
}

impl std::fmt::Debug for BudgetMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetMeter")
            .field("budgets", &self.inner.budgets)
            .finish_non_exhaustive()
    }
}

impl BudgetMeter {
    /// A meter for the settings' budgets; `None` when there are none, so nothing is added
    /// to a request. It starts counting at once: install it as an observer, then
    /// [`BudgetMeter::read_today`].
    pub fn new(config: &Config) -> Option<Self> {
        if config.usage.budgets.is_empty() {
            return None;
        }
        Some(BudgetMeter {
            inner: Arc::new(Inner {
                prices: PriceTable::new(config),
                budgets: config.usage.budgets.clone().into_iter().collect(),
                today: Mutex::new(Today {
                    day: records::now_seconds().div_euclid(SECONDS_PER_DAY),
                    spend: HashMap::new(),
                    counted_live: Some(HashSet::new()),
                    alerts: Vec::new(),
                }),
            }),
        })
    }

    /// Adds what today's log file holds (written before this meter was watching), once.
    /// A budget already past 80 % or 100 % then raises no new alert: the gateway before
    /// this one did.
    pub fn read_today(&self, log: &RequestLog) {
        log.flush();
        let day = self.lock().day;
        let mut bytes = match log.dir() {
            Some(dir) => std::fs::read(records::day_file(dir, day)).unwrap_or_default(),
            None => vec![],
        };
        let mut today = self.lock();
        let counted = today.counted_live.take().unwrap_or_default();
        let ranges: Vec<_> = records::line_ranges(&bytes).collect();
        for range in ranges {
            let Some(line) = Line::parse_in_place(&mut bytes[range]) else {
                continue;
            };
            if counted.contains(&*line.id) || records::day_of(&line.time) != Some(day) {
                continue;
            }
            if let (Some(provider), Some(tokens)) = (line.provider.as_deref(), line.usage) {
                if !line.cached() {
                    let model = line.model.as_deref().unwrap_or_default();
                    let (input, output) = (tokens.input_tokens, tokens.output_tokens);
                    self.add(&mut today, provider, model, input, output, false);
                }
            }
        }
    }

    /// Whether `provider` may send another request now: refused with a 429 that names
    /// the provider, the budget and when it resets, once today's spend has reached a
    /// budget with `stop_at_budget`.
    pub fn admit(&self, provider: &str) -> Result<(), GatewayError> {
        let Some(budget) = self.inner.budgets.get(provider) else {
            return Ok(());
        };
        if !budget.stop_at_budget {
            return Ok(());
        }
        let now = records::now_seconds();
        let spent = {
            let mut today = self.lock();
            roll_over(&mut today, now.div_euclid(SECONDS_PER_DAY));
            today.spend.get(provider).map_or(0.0, |s| s.usd)
        };
        if spent < budget.daily_usd {
            return Ok(());
        }
        let reset_in = SECONDS_PER_DAY - now.rem_euclid(SECONDS_PER_DAY);
        Err(GatewayError::ProviderLimited {
            provider: provider.to_string(),
            limit: format!("{} a day", usd(budget.daily_usd)),
            why: format!(
                "{} spent today, so its requests are refused until the budget resets at \
                 midnight UTC (in {}); raise the budget or turn off \"stop at budget\" in \
                 Protogate's Usage view",
                usd(spent),
                hours_minutes(reset_in)
            ),
            retry_after_s: reset_in as u64,
        })
    }

    /// Today's spend of `provider`, in USD.
    pub fn spent_today(&self, provider: &str) -> f64 {
        let mut today = self.lock();
        roll_over(
            &mut today,
            records::now_seconds().div_euclid(SECONDS_PER_DAY),
        );
        today.spend.get(provider).map_or(0.0, |s| s.usd)
    }

    /// Whether `provider` has a budget here.
    pub fn covers(&self, provider: &str) -> bool {
        self.inner.budgets.contains_key(provider)
    }

    /// The crossings since the last call, oldest first.
    pub fn take_alerts(&self) -> Vec<BudgetAlert> {
        std::mem::take(&mut self.lock().alerts)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Today> {
        self.inner.today.lock().expect("budget lock")
    }

    /// Adds a request's cost; `announce`: a crossing raises an alert (not when reading
    /// back the file, whose crossings the gateway before announced).
    fn add(
        &self,
        today: &mut Today,
        provider: &str,
        model: &str,
        input: u64,
        output: u64,
        announce: bool,
    ) {
        let Some(budget) = self.inner.budgets.get(provider) else {
            return;
        };
        if !today.spend.contains_key(provider) {
            today.spend.insert(provider.to_string(), Spend::default());
        }
        let spend = today.spend.get_mut(provider).expect("inserted above");
        if !spend.prices.contains_key(model) {
            let price = self.inner.prices.lookup(provider, model).map(|l| l.price);
            spend.prices.insert(model.to_string(), price);
        }
        // A model with no price adds nothing it can name; the Usage view says "no price".
        let Some(price) = spend.prices[model] else {
            return;
        };
        spend.usd += price.cost(input, output);
        let crossed = if !spend.reached && spend.usd >= budget.daily_usd {
            spend.reached = true;
            spend.warned = true;
            Some(100)
        } else if !spend.warned && spend.usd >= budget.daily_usd * WARN_AT {
            spend.warned = true;
            Some(80)
        } else {
            None
        };
        if let Some(percent) = crossed.filter(|_| announce) {
            let alert = BudgetAlert {
                provider: provider.to_string(),
                percent,
                spent_usd: spend.usd,
                daily_usd: budget.daily_usd,
                stop_at_budget: budget.stop_at_budget,
            };
            tracing::warn!("budget: {} — {}", alert.title(), alert.body());
            today.alerts.push(alert);
        }
    }
}

impl RecordObserver for BudgetMeter {
    fn finished(&self, record: &Record) {
        let (Some(provider), Some(usage)) = (record.provider.as_deref(), record.usage) else {
            return;
        };
        if record.cache.is_some() || !self.covers(provider) {
            return;
        }
        let Some(day) = records::day_of(&record.time) else {
            return;
        };
        let mut today = self.lock();
        roll_over(&mut today, day);
        // Started yesterday, finished after midnight: yesterday's spend.
        if day < today.day {
            return;
        }
        // Before today's file is read, the spend is not whole: a crossing then is not
        // announced (the file's part may have been announced by the gateway before).
        let announce = match &mut today.counted_live {
            Some(counted) => {
                counted.insert(record.id.clone());
                false
            }
            None => true,
        };
        let model = record.model.as_deref().unwrap_or_default();
        let (input, output) = (usage.input_tokens, usage.output_tokens);
        self.add(&mut today, provider, model, input, output, announce);
    }
}

/// A new day starts from nothing.
fn roll_over(today: &mut Today, day: Day) {
    if day > today.day {
        today.day = day;
        today.spend.clear();
    }
}

/// `$5.00`; below a cent, `$0.0042`.
pub fn usd(amount: f64) -> String {
    if amount > 0.0 && amount < 0.01 {
        format!("${amount:.4}")
    } else {
        format!("${amount:.2}")
    }
}

fn hours_minutes(seconds: i64) -> String {
    let minutes = (seconds + 59) / 60;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}
