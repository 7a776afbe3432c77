//! What an import read, wrote, found already present and skipped, with every
//! skip and change named with its reason and source.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// The kinds of record the report counts, in the order it prints them.
pub const KINDS: [&str; 7] =
    ["users", "games", "library_entries", "achievements", "custom_achievements", "shared_achievements", "images"];

/// Counts for one kind of record.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub read: u64,
    pub imported: u64,
    pub already_present: u64,
    pub skipped: u64,
}

/// One skip or change.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    pub kind: &'static str,
    /// `skipped` or `changed`.
    pub action: &'static str,
    pub reason: String,
    /// File, and line or key.
    pub source: String,
}

/// The whole report.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub run_id: Option<i64>,
    pub dry_run: bool,
    pub source: String,
    pub counts: BTreeMap<&'static str, Counts>,
    pub events: Vec<Event>,
    /// Files under `static/achievement_images/` that nothing references.
    pub unreferenced_images: u64,
    /// Wall time of the whole run, its commit included.
    pub seconds: f64,
    /// Of which the commit (deferred work runs there: it must stay linear).
    pub commit_seconds: f64,
    /// Whether the new accounts' rows were loaded in bulk (their tables
    /// locked, indexes and foreign keys built again at the end).
    pub loaded_in_bulk: bool,
    /// Seconds per step, in the order they ran (where a slow run spends
    /// its time).
    pub steps: Vec<(&'static str, f64)>,
}

impl Report {
    pub fn new(source: String, dry_run: bool) -> Self {
        let counts = KINDS.iter().map(|k| (*k, Counts::default())).collect();
        Report { source, dry_run, counts, ..Default::default() }
    }

    pub fn counts(&mut self, kind: &'static str) -> &mut Counts {
        self.counts.entry(kind).or_default()
    }

    pub fn skip(&mut self, kind: &'static str, reason: impl Into<String>, source: impl Into<String>) {
        self.counts(kind).skipped += 1;
        self.events.push(Event { kind, action: "skipped", reason: reason.into(), source: source.into() });
    }

    /// A record imported with something changed or dropped.
    pub fn change(&mut self, kind: &'static str, reason: impl Into<String>, source: impl Into<String>) {
        self.events.push(Event { kind, action: "changed", reason: reason.into(), source: source.into() });
    }

    /// Records that `step` ended now, having started at `since`; returns
    /// now, the next step's start.
    pub fn step(&mut self, step: &'static str, since: std::time::Instant) -> std::time::Instant {
        let now = std::time::Instant::now();
        self.steps.push((step, now.duration_since(since).as_secs_f64()));
        now
    }

    /// Takes in the counts and events of a report on a part of the input
    /// (its events follow this one's).
    pub fn absorb(&mut self, part: Report) {
        for (kind, c) in part.counts {
            let mine = self.counts(kind);
            mine.read += c.read;
            mine.imported += c.imported;
            mine.already_present += c.already_present;
            mine.skipped += c.skipped;
        }
        self.events.extend(part.events);
    }

    /// True when the run added nothing (as a second run over the same
    /// directory should).
    pub fn imported_nothing(&self) -> bool {
        self.counts.values().all(|c| c.imported == 0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.dry_run { "Dry run (nothing written)" } else { "Import" };
        match self.run_id {
            Some(id) if !self.dry_run => writeln!(f, "{what} of {} — run {id}", self.source)?,
            _ => writeln!(f, "{what} of {}", self.source)?,
        }
        writeln!(f, "{:<22}{:>10}{:>10}{:>10}{:>10}", "", "read", "imported", "present", "skipped")?;
        for kind in KINDS {
            let c = self.counts.get(kind).copied().unwrap_or_default();
            writeln!(f, "{kind:<22}{:>10}{:>10}{:>10}{:>10}", c.read, c.imported, c.already_present, c.skipped)?;
        }
        writeln!(f, "unreferenced image files left alone: {}", self.unreferenced_images)?;
        if self.imported_nothing() {
            writeln!(f, "Nothing new to import.")?;
        }
        if !self.events.is_empty() {
            writeln!(f, "\n{} skip(s) and change(s):", self.events.len())?;
            for e in &self.events {
                writeln!(f, "  {} {} at {}: {}", e.kind, e.action, e.source, e.reason)?;
            }
        }
        if self.loaded_in_bulk {
            writeln!(f, "Library rows loaded in bulk: their indexes and foreign keys were built again.")?;
        }
        let steps: Vec<String> = self.steps.iter().map(|(s, t)| format!("{s} {t:.1}")).collect();
        writeln!(f, "took {:.1} s (commit {:.2} s; {})", self.seconds, self.commit_seconds, steps.join(", "))
    }
}
