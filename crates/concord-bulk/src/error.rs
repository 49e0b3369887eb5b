/// Why a bulk load or an export could not go on (a refused article is not one of
/// these: it is reported and the load goes on).
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error("cannot read the input: {0}")]
    Read(#[source] std::io::Error),
    #[error("CSV header: {0}")]
    Header(String),
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("the service refused the API key ({status}): {detail}")]
    Unauthorized { status: u16, detail: String },
    #[error("the service answered {status}: {detail}")]
    Http { status: u16, detail: String },
    #[error("the service is still busy after {attempts} attempts (last answer {status})")]
    Busy { attempts: u32, status: u16 },
    #[error("cannot reach the service at {url} after {attempts} attempts: {source}")]
    Transport {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from the service: {0}")]
    Protocol(String),
    #[error("store: {0}")]
    Store(#[from] concord_store::StoreError),
}
