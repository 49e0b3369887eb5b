//! What the service's JSON log says about one start: which index path it took,
//! how long the store and index took, and what recovery re-queued.

use jiff::Timestamp;
use serde::Deserialize;

/// How the index came up at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexPath {
    /// The dump was loaded (then repaired against the store).
    Loaded,
    /// No usable dump: rebuilt from the store.
    Rebuilt,
    /// The log does not say (killed before it got there).
    Unknown,
}

impl IndexPath {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loaded => "loaded",
            Self::Rebuilt => "rebuilt",
            Self::Unknown => "unknown",
        }
    }
}

/// The start-up facts one log holds.
#[derive(Debug, Clone, PartialEq)]
pub struct StartupLog {
    pub index: IndexPath,
    /// Entries in the loaded dump.
    pub dump_entries: Option<u64>,
    /// Clustered articles the clusterer found in the store.
    pub articles: Option<u64>,
    /// Index entries added from the store (missing from the dump).
    pub index_repaired: Option<u64>,
    /// From "model loaded" to "clusterer state loaded": store, index and clusterer state.
    pub state_ms: Option<u64>,
    /// "pipeline ready" as the service measured it (model included).
    pub ready_ms: Option<u64>,
    /// Unfinished articles recovery re-queued (0 when it logged none).
    pub requeued: u64,
}

#[derive(Debug, Deserialize)]
struct Line {
    timestamp: Timestamp,
    #[serde(default)]
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Line {
    fn message(&self) -> &str {
        self.fields
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
    }

    /// A numeric field, whether tracing wrote it as a number or a string.
    fn number(&self, key: &str) -> Option<u64> {
        match self.fields.get(key)? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

fn lines(log: &str) -> impl Iterator<Item = Line> + '_ {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Line>(l.trim()).ok())
}

/// The messages of a JSON log, in order.
pub fn messages(log: &str) -> Vec<String> {
    lines(log).map(|l| l.message().to_owned()).collect()
}

impl StartupLog {
    pub fn parse(log: &str) -> Self {
        let mut out = Self {
            index: IndexPath::Unknown,
            dump_entries: None,
            articles: None,
            index_repaired: None,
            state_ms: None,
            ready_ms: None,
            requeued: 0,
        };
        let mut model_at = None;
        for line in lines(log) {
            match line.message() {
                "model loaded" => model_at = Some(line.timestamp),
                "index dump loaded" => {
                    out.index = IndexPath::Loaded;
                    out.dump_entries = line.number("entries");
                }
                m if m.starts_with("no usable index dump")
                    || m.starts_with("index dump has another dimension") =>
                {
                    out.index = IndexPath::Rebuilt;
                }
                "clusterer state loaded" => {
                    out.articles = line.number("articles");
                    out.index_repaired = line.number("index_repaired");
                    out.state_ms = model_at.and_then(|at| {
                        u64::try_from(line.timestamp.duration_since(at).as_millis()).ok()
                    });
                }
                "pipeline ready" => out.ready_ms = line.number("millis"),
                "re-queueing unfinished articles" => {
                    out.requeued = line.number("articles").unwrap_or(0);
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{IndexPath, StartupLog, messages};

    const LOG: &str = r#"{"timestamp":"2026-11-25T11:05:07.007618Z","level":"INFO","fields":{"message":"model loaded","model":"use-m-v3","dim":512,"millis":"2221"},"target":"concord::serve"}
not json at all
{"timestamp":"2026-11-25T11:05:07.406200Z","level":"INFO","fields":{"message":"no usable index dump; rebuilding from the store","reason":"no index dump"},"target":"concord_pipeline::pipeline"}
{"timestamp":"2026-11-25T11:05:07.506778Z","level":"INFO","fields":{"message":"clusterer state loaded","clusters":3,"articles":12,"index_repaired":12,"index_dropped":0},"target":"concord_cluster::clusterer"}
{"timestamp":"2026-11-25T11:05:07.507106Z","level":"INFO","fields":{"message":"pipeline ready","millis":"2620"},"target":"concord::serve"}
{"timestamp":"2026-11-25T11:05:07.607106Z","level":"INFO","fields":{"message":"re-queueing unfinished articles","articles":4},"target":"concord_pipeline::pipeline"}"#;

    #[test]
    fn reads_the_start_up_facts() {
        let s = StartupLog::parse(LOG);
        assert_eq!(s.index, IndexPath::Rebuilt);
        assert_eq!(s.articles, Some(12));
        assert_eq!(s.index_repaired, Some(12));
        assert_eq!(s.state_ms, Some(499));
        assert_eq!(s.ready_ms, Some(2620));
        assert_eq!(s.requeued, 4);
        assert_eq!(messages(LOG).len(), 5);
    }

    #[test]
    fn an_empty_log_says_nothing() {
        let s = StartupLog::parse("");
        assert_eq!(s.index, IndexPath::Unknown);
        assert_eq!(s.requeued, 0);
    }
}
