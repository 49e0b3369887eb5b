//! Identifiers. Internal ids are dense integers assigned by the store; they are
//! never reused, so an id seen by a client stays meaningful forever.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// An article, as the store numbered it on first arrival.
    ArticleId,
    "a"
);
id_type!(
    /// A cluster. A merged cluster's id keeps resolving to its survivor.
    ClusterId,
    "c"
);
id_type!(
    /// A webhook subscription (an endpoint and the event types it wants).
    SubscriptionId,
    "s"
);
id_type!(
    /// One outbox event on its way to one subscription, with its attempts.
    DeliveryId,
    "d"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_display_with_their_kind() {
        assert_eq!(ArticleId(7).to_string(), "a7");
        assert_eq!(ClusterId(12).to_string(), "c12");
        assert_ne!(ArticleId(1).to_string(), ClusterId(1).to_string());
        assert_eq!(SubscriptionId(3).to_string(), "s3");
        assert_eq!(DeliveryId(4).to_string(), "d4");
    }
}
