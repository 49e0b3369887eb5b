//! The real seed articles.

use concord_core::Lang;
use concord_eval::seeds;

use crate::data::shared_data;

#[test]
fn five_articles_two_events_in_replay_order() {
    let data = seeds::read(shared_data("seeds")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(data.len(), 5);
    assert_eq!(data.gold_clusters(), 2);
    // File order is en, fr, ar, fr, en; the 2015 article (004) replays first, and the
    // two articles of 2020-09-09 keep their file order.
    let keys: Vec<&str> = data.items.iter().map(|i| &i.key[..3]).collect();
    assert_eq!(keys, ["004", "000", "001", "002", "003"]);
    let langs: Vec<Lang> = data.items.iter().map(|i| i.lang).collect();
    assert_eq!(langs, [Lang::EN, Lang::EN, Lang::FR, Lang::AR, Lang::FR]);

    let first = &data.items[0];
    assert_eq!(first.gold, "china-asks-us-tech-firms-security-pledge-2015");
    assert_eq!(first.published_at.to_string(), "2015-09-19T00:00:00Z");
    assert_eq!(
        first.title,
        "China Wants U.S. Tech Companies To Pledge Compliance With Their Security Standards"
    );
    assert!(
        first.body.starts_with("by Czarelli Tuason"),
        "{:?}",
        &first.body[..40]
    );
    assert!(
        data.items[1..]
            .iter()
            .all(|i| i.gold == "global-initiative-on-data-security-2020")
    );
    assert_eq!(
        data.items[2].title,
        "La Chine souhaite établir des normes mondiales pour le numérique"
    );
    assert!(
        data.items
            .iter()
            .all(|i| i.reference.is_none() && i.body.len() > 200)
    );
}
