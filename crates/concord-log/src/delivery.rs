//! A consumer's notices as they arrive, and what a role answers for each.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures_util::StreamExt;
use tracing::{debug, warn};

use crate::{LogError, Notice, PULL_EXPIRES, PULL_HEARTBEAT};

/// The notices of one durable consumer, pulled `batch` at a time. Dropping it stops
/// pulling; notices delivered and not acked go out again after the consumer's ack wait.
pub struct Deliveries {
    consumer: &'static str,
    messages: jetstream::consumer::pull::Stream,
}

impl std::fmt::Debug for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliveries")
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

impl Deliveries {
    pub(crate) async fn open(
        consumer: &PullConsumer,
        name: &'static str,
        batch: usize,
    ) -> Result<Self, LogError> {
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch.max(1))
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await
            .map_err(|e| LogError::Receive {
                consumer: name,
                source: Box::new(e),
            })?;
        Ok(Self {
            consumer: name,
            messages,
        })
    }

    /// The next notice, waiting for one as long as it takes. `None`: the stream ended (the
    /// client was closed). An error may be passing (a missed heartbeat while reconnecting):
    /// calling again goes on. A message that is not a notice is terminated (never
    /// redelivered) with a warning and skipped.
    pub async fn next(&mut self) -> Option<Result<Delivery, LogError>> {
        loop {
            let message = match self.messages.next().await? {
                Ok(message) => message,
                Err(e) => {
                    return Some(Err(LogError::Receive {
                        consumer: self.consumer,
                        source: Box::new(e),
                    }));
                }
            };
            let (sequence, attempt) = match message.info() {
                Ok(info) => (info.stream_sequence, info.delivered),
                // Not a JetStream delivery (no ack subject): nothing to ack, nothing to do.
                Err(e) => {
                    warn!(consumer = self.consumer, error = %e, "message without delivery info skipped");
                    continue;
                }
            };
            let notice = serde_json::from_slice::<Notice>(&message.payload)
                .map_err(|e| e.to_string())
                .and_then(|n| n.check().map(|()| n).map_err(|e| e.to_string()));
            match notice {
                Ok(notice) => {
                    debug!(
                        consumer = self.consumer,
                        article_id = notice.article_id.get(),
                        sequence,
                        attempt,
                        "notice delivered"
                    );
                    return Some(Ok(Delivery {
                        notice,
                        sequence,
                        attempt,
                        consumer: self.consumer,
                        message,
                    }));
                }
                Err(reason) => {
                    warn!(consumer = self.consumer, sequence, %reason, "unreadable notice terminated");
                    if let Err(e) = message.ack_with(AckKind::Term).await {
                        warn!(consumer = self.consumer, sequence, error = %e, "terminating an unreadable notice failed");
                    }
                }
            }
        }
    }
}

/// One delivery of a notice. Answer it with [`ack`](Self::ack) once its work is durably
/// done, or [`nak`](Self::nak); dropping it unanswered lets it go out again after the
/// consumer's ack wait.
pub struct Delivery {
    notice: Notice,
    sequence: u64,
    attempt: i64,
    consumer: &'static str,
    message: jetstream::Message,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("notice", &self.notice)
            .field("sequence", &self.sequence)
            .field("attempt", &self.attempt)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// The article and version to look at.
    pub fn notice(&self) -> &Notice {
        &self.notice
    }

    /// The notice's sequence in its stream (publish order).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Which delivery of this notice this is: 1 the first time.
    pub fn attempt(&self) -> i64 {
        self.attempt
    }

    /// The work is done and durable: the notice is not delivered again (in the work
    /// queue it is removed). Waits for the server's confirmation.
    pub async fn ack(self) -> Result<(), LogError> {
        self.answer(AckKind::Ack, "ack").await
    }

    /// Not now: deliver this notice again after `delay` (to any worker). Counts as a
    /// delivery towards `max_deliver`; use it for transient failures, not for pacing. On
    /// the cluster feed nothing else is delivered meanwhile (publish order is kept).
    pub async fn nak(self, delay: Duration) -> Result<(), LogError> {
        self.answer(AckKind::Nak(Some(delay)), "nak").await
    }

    /// Still working: restarts this delivery's ack wait.
    pub async fn in_progress(&self) -> Result<(), LogError> {
        self.answer(AckKind::Progress, "progress").await
    }

    async fn answer(&self, kind: AckKind, name: &'static str) -> Result<(), LogError> {
        self.message
            .double_ack_with(kind)
            .await
            .map_err(|source| LogError::Ack {
                kind: name,
                consumer: self.consumer,
                source,
            })?;
        debug!(
            consumer = self.consumer,
            article_id = self.notice.article_id.get(),
            sequence = self.sequence,
            answer = name,
            "notice answered"
        );
        Ok(())
    }
}
