//! Read accessors the clusterer needs besides search.

use crate::{TimeWindow, VectorIndex};

impl VectorIndex {
    /// How many live articles fall in `window` (two binary searches and a scan
    /// of the window's slots for tombstones).
    pub fn count_in_window(&self, window: TimeWindow) -> usize {
        let from = window.from.as_second();
        let to = window.to.as_second();
        let lo = self.by_time.partition_point(|(s, _)| *s < from);
        let hi = self.by_time.partition_point(|(s, _)| *s <= to);
        self.by_time.get(lo..hi).map_or(0, |range| {
            range
                .iter()
                .filter(|(_, slot)| self.slots.get(*slot).is_some_and(|s| s.live))
                .count()
        })
    }
}
