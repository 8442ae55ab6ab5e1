//! Usage: what the prototypes asked of each provider, model and site, and what it cost
//! (an estimate, from a price table), read from the request log's daily files, so it
//! survives restarts and covers what the log's retention keeps. Also the daily budgets
//! per provider that warn at 80 % and may refuse at 100 %.
//!
//! - `records`: the log files' lines, read into a small borrowing struct.
//! - `tally`: rows, percentiles.
//! - [`summary`]: the Usage view's numbers over today, 7 or 30 days.
//! - [`prices`]: the built-in prices and the settings' own.
//! - [`budget`]: today's spend per provider, the warning and the refusal.

pub mod budget;
pub mod prices;
mod records;
pub mod summary;
mod tally;
#[cfg(test)]
mod tests;

use serde::Serialize;

pub use budget::{BudgetAlert, BudgetMeter};
pub use prices::{Price, PriceLookup, PriceSource, PriceTable, PRICES_AS_OF};
pub use summary::{summarize, Range, Summary};
pub use tally::Row;

use crate::config::Config;
use crate::request_log::RequestLog;

/// The summary of `log`'s files as they stand now (its buffer written out first).
pub fn summarize_log(log: &RequestLog, config: &Config, range: Range) -> Summary {
    log.flush();
    summarize(log.dir(), config, range, records::now_seconds())
}

/// The prices the window lists: the built-in table with its date, and the settings'.
#[derive(Debug, Serialize)]
pub struct PriceList {
    pub as_of: &'static str,
    pub built_in: Vec<NamedPrice>,
    pub settings: Vec<NamedPrice>,
}

#[derive(Debug, Serialize)]
pub struct NamedPrice {
    /// A model, or `provider/model`.
    pub model: String,
    #[serde(flatten)]
    pub price: Price,
}

pub fn price_list(config: &Config) -> PriceList {
    PriceList {
        as_of: PRICES_AS_OF,
        built_in: prices::built_in()
            .map(|(model, price)| NamedPrice {
                model: model.to_string(),
                price,
            })
            .collect(),
        settings: config
            .usage
            .prices
            .iter()
            .map(|(model, p)| NamedPrice {
                model: model.clone(),
                price: Price {
                    input: p.input,
                    output: p.output,
                },
            })
            .collect(),
    }
}
