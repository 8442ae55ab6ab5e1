//! `protogate usage [today|7d|30d]`: the Usage view's tables for a headless gateway,
//! read from the request log files.

use std::path::PathBuf;

use protogate::config;
use protogate::usage::budget::usd;
use protogate::usage::{summarize, Range, Row, Summary};

use super::{load_config, ServeArgs};

pub fn run(config_path: Option<PathBuf>, range: &str) -> Result<(), String> {
    let range = Range::parse(range)?;
    let (config, _) = load_config(config_path, &ServeArgs::default())?;
    let dir = config.log.dir.clone().or_else(config::default_log_dir);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let summary = summarize(dir.as_deref(), &config, range, now);
    let folder = dir.map_or("(no log folder)".into(), |d| d.display().to_string());
    print!("{}", render(&summary, &folder));
    Ok(())
}

fn render(s: &Summary, folder: &str) -> String {
    let days = match s.range {
        Range::Today => format!("today ({}, UTC)", &s.to[..10]),
        range => format!(
            "over {} days ({} to {}, UTC)",
            range.days(),
            &s.from[..10],
            &s.to[..10]
        ),
    };
    let mut out = format!(
        "Usage {days}, read from {folder}\nCosts are estimates: built-in prices as of {}, or \
         your own under \"usage.prices\" in the settings.\n\n",
        s.prices_as_of
    );
    out += &header("provider / model");
    for p in &s.providers {
        out += &line(&p.name, p, cost(p));
        for m in s.models.iter().filter(|m| m.provider == p.name) {
            let shown = match m.price {
                Some(_) => cost(&m.row),
                None => "no price".into(),
            };
            out += &line(&format!("  {}", m.row.name), &m.row, shown);
        }
    }
    out += &line("total", &s.totals, cost(&s.totals));
    out += "\n";
    out += &header("site");
    for site in &s.sites {
        out += &line(&site.name, site, cost(site));
    }
    if !s.members.is_empty() {
        out += "\n";
        out += &header("member");
        for member in &s.members {
            out += &line(&member.name, member, cost(member));
        }
    }
    if s.totals.unpriced_requests > 0 {
        out += "\n+? and \"no price\": requests to models with no price, whose cost is unknown; \
                give them one under \"usage.prices\".\n";
    }
    if !s.budgets.is_empty() {
        out += "\nToday's budgets (reset at midnight UTC):\n";
        for b in &s.budgets {
            let when = if b.stop_at_budget {
                "refused at the budget"
            } else {
                "warned only"
            };
            out += &format!(
                "  {}: {} of {} ({:.0} %), {when}\n",
                b.provider,
                usd(b.spent_today_usd),
                usd(b.daily_usd),
                100.0 * b.spent_today_usd / b.daily_usd
            );
        }
    }
    out
}

fn header(first: &str) -> String {
    format!(
        "{first:<44} {:>8} {:>7} {:>7} {:>11} {:>11} {:>8} {:>8} {:>10}\n",
        "requests", "errors", "cached", "tokens in", "tokens out", "p50 ms", "p95 ms", "cost"
    )
}

fn line(name: &str, r: &Row, cost: String) -> String {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
    let name: String = match name.chars().count() {
        0..=44 => name.to_string(),
        _ => name.chars().take(43).chain(['…']).collect(),
    };
    format!(
        "{name:<44} {:>8} {:>7} {:>7} {:>11} {:>11} {:>8} {:>8} {:>10}\n",
        r.requests,
        r.errors,
        r.cached,
        r.input_tokens,
        r.output_tokens,
        ms(r.latency_p50_ms),
        ms(r.latency_p95_ms),
        cost
    )
}

/// The row's cost, with what is unknown said: "$1.20 + no price".
fn cost(r: &Row) -> String {
    match (r.cost_usd, r.unpriced_requests) {
        (c, n) if n > 0 && c == 0.0 => "no price".into(),
        (c, n) if n > 0 => format!("{}+?", usd(c)),
        (c, _) => usd(c),
    }
}
