//! Request and reply between the roles, on core NATS (nothing to keep: a request whose
//! answer is lost is asked again by the person or program that made it).
//!
//! Two services: the embed workers answer [`EMBED_RPC_SUBJECT`] (a search's query text
//! to a vector: any worker, the server picks one of the queue group), and the active
//! clusterer alone answers [`CLUSTER_RPC_SUBJECT`] (what needs its in-memory state: the
//! index's searches, related clusters, analysts' corrections, deletes). The payloads
//! are the roles' business; this module moves bytes and says who did not answer.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::{ArticleLog, LogError};

/// Query texts to vectors, answered by any embed worker.
pub const EMBED_RPC_SUBJECT: &str = "concord.rpc.embed";
/// Index queries, corrections and deletes, answered by the active clusterer only.
pub const CLUSTER_RPC_SUBJECT: &str = "concord.rpc.cluster";

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// Nobody serves the subject now (no embed worker, no active clusterer).
    NoResponders,
    /// Somebody took it and did not answer in time.
    TimedOut,
}

impl ArticleLog {
    /// Sends `payload` to whoever serves `subject` and waits up to `timeout` for the
    /// answer. `Err(Ok(why))`: nobody answered; `Err(Err(_))`: the connection failed.
    pub async fn request(
        &self,
        subject: &'static str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Bytes, Result<Unanswered, LogError>> {
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(timeout));
        match self.client.send_request(subject, request).await {
            Ok(message) => Ok(message.payload),
            Err(e) => match e.kind() {
                async_nats::RequestErrorKind::NoResponders => Err(Ok(Unanswered::NoResponders)),
                async_nats::RequestErrorKind::TimedOut => Err(Ok(Unanswered::TimedOut)),
                _ => Err(Err(LogError::connection(e))),
            },
        }
    }

    /// Starts answering `subject` (as one of a queue group named after it: each request
    /// goes to one of the processes serving it). Dropping [`Requests`] stops.
    pub async fn serve(&self, subject: &'static str) -> Result<Requests, LogError> {
        let subscriber = self
            .client
            .queue_subscribe(subject, subject.to_owned())
            .await
            .map_err(LogError::connection)?;
        Ok(Requests {
            subscriber,
            client: self.client.clone(),
        })
    }
}

/// The requests for one subject, as they arrive.
#[derive(Debug)]
pub struct Requests {
    subscriber: async_nats::Subscriber,
    client: async_nats::Client,
}

impl Requests {
    /// The next request; `None` once the subscription ended. Messages without a reply
    /// address (nobody waits for them) are skipped.
    pub async fn next(&mut self) -> Option<Request> {
        loop {
            let message = self.subscriber.next().await?;
            if let Some(reply) = message.reply {
                return Some(Request {
                    payload: message.payload,
                    reply,
                    client: self.client.clone(),
                });
            }
            tracing::warn!(subject = %message.subject, "request without a reply address; skipped");
        }
    }

    /// Stops receiving: requests the server still routes here meanwhile go unanswered
    /// (their senders time out), so unsubscribe before handing over.
    pub async fn stop(mut self) {
        let _ = self.subscriber.unsubscribe().await;
    }
}

/// One request: its payload and where the answer goes.
#[derive(Debug)]
pub struct Request {
    payload: Bytes,
    reply: async_nats::Subject,
    client: async_nats::Client,
}

impl Request {
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Sends the answer (at most once: the request is consumed).
    pub async fn reply(self, payload: Vec<u8>) -> Result<(), LogError> {
        self.client
            .publish(self.reply, payload.into())
            .await
            .map_err(LogError::connection)
    }
}
