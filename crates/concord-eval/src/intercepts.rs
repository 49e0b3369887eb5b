//! Per-language intercepts for the calibrated join model (`concord fit-join`), in
//! effect coding: within each group of rows (headlines, reports), each language with
//! enough rows gets an intercept, and the intercepts sum to zero over the group's
//! rows, weighted as the fit weighs them. A group's own level (the model's bias, or
//! bias plus the reports' `both_long`) is then the mean of its same-language rows,
//! and what sets a cross-lingual pair apart from it (`other_language`) is one weight
//! for both groups.
//!
//! Why not one indicator column per language: a cross-lingual row has no language
//! column, so its group's level would be fitted on that group's cross-lingual rows
//! alone, and the rated pairs' only cross-lingual ones (de-en) were drawn as hard
//! negatives: cross-lingual reports (the seed articles) fell from p 0.5 to 0.3.

use std::collections::BTreeMap;

/// Which rows are which: the group of a row (`true`: two article-length texts) and
/// the language both texts share, if any.
pub type RowLanguage = Option<(bool, String)>;

/// The columns one row adds to the model's features, and how the fitted weights of
/// those columns become one intercept per (group, language).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LanguageIntercepts {
    /// Per group with two or more languages: (language, total row weight), heaviest
    /// last; the heaviest has no column, its intercept follows from the others'.
    groups: Vec<(bool, Vec<(String, f64)>)>,
}

impl LanguageIntercepts {
    /// The languages of each group that hold at least `min_rows` rows. `rows` pairs
    /// each row's language with its sample weight.
    pub fn new<'a>(
        rows: impl IntoIterator<Item = (&'a RowLanguage, f64)>,
        min_rows: usize,
    ) -> Self {
        let mut counts: BTreeMap<&(bool, String), (usize, f64)> = BTreeMap::new();
        for (lang, weight) in rows {
            if let Some(key) = lang {
                let entry = counts.entry(key).or_default();
                entry.0 += 1;
                entry.1 += weight;
            }
        }
        let groups = [false, true]
            .into_iter()
            .filter_map(|group| {
                let mut langs: Vec<(String, f64)> = counts
                    .iter()
                    .filter(|((g, _), (n, w))| *g == group && *n >= min_rows && *w > 0.0)
                    .map(|((_, lang), (_, w))| (lang.clone(), *w))
                    .collect();
                langs.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
                (langs.len() >= 2).then_some((group, langs))
            })
            .collect();
        LanguageIntercepts { groups }
    }

    /// How many columns [`LanguageIntercepts::columns`] gives every row.
    pub fn width(&self) -> usize {
        self.groups.iter().map(|(_, langs)| langs.len() - 1).sum()
    }

    /// The columns of a row in `lang`: 1 in its language's column; in the heaviest
    /// language of its group, minus each other language's weight over the heaviest's,
    /// so the intercepts sum to zero over the group; 0 elsewhere (a cross-lingual row,
    /// a rarer language, the other group).
    pub fn columns(&self, lang: &RowLanguage) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.width());
        for (group, langs) in &self.groups {
            let Some(((heaviest, heaviest_weight), others)) = langs.split_last() else {
                continue;
            };
            for (l, w) in others {
                out.push(match lang {
                    Some((g, own)) if g == group && own == l => 1.0,
                    Some((g, own)) if g == group && own == heaviest => -w / heaviest_weight,
                    _ => 0.0,
                });
            }
        }
        out
    }

    /// Every (group, language)'s intercept, from the fitted weights of the columns
    /// (in [`LanguageIntercepts::columns`] order), sorted by group then language.
    pub fn intercepts(&self, fitted: &[f64]) -> Vec<((bool, String), f64)> {
        let mut out = Vec::new();
        let mut fitted = fitted.iter().copied();
        for (group, langs) in &self.groups {
            let Some(((heaviest, heaviest_weight), others)) = langs.split_last() else {
                continue;
            };
            let mut sum = 0.0;
            for (l, w) in others {
                let beta = fitted.next().unwrap_or(0.0);
                sum += w * beta;
                out.push(((*group, l.clone()), beta));
            }
            out.push(((*group, heaviest.clone()), -sum / heaviest_weight));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lang(group: bool, l: &str) -> RowLanguage {
        Some((group, l.to_owned()))
    }

    #[test]
    fn each_group_gets_its_languages_with_enough_rows_and_the_heaviest_has_no_column() {
        let mut rows = vec![(lang(false, "en"), 1.0); 30];
        rows.extend(vec![(lang(false, "de"), 1.0); 20]);
        rows.extend(vec![(lang(false, "fr"), 1.0); 5]); // too few: shares the bias
        rows.extend(vec![(lang(true, "ar"), 2.0); 25]);
        rows.extend(vec![(None, 1.0); 40]); // cross-lingual
        let coding = LanguageIntercepts::new(rows.iter().map(|(l, w)| (l, *w)), 20);
        // Headlines: de and en (en heaviest, so one column); reports: ar alone, none.
        assert_eq!(coding.width(), 1);
        assert_eq!(coding.columns(&lang(false, "de")), vec![1.0]);
        assert_eq!(coding.columns(&lang(false, "en")), vec![-20.0 / 30.0]);
        assert_eq!(coding.columns(&lang(false, "fr")), vec![0.0]);
        assert_eq!(coding.columns(&lang(true, "ar")), vec![0.0]);
        assert_eq!(coding.columns(&None), vec![0.0]);
        let intercepts = coding.intercepts(&[0.6]);
        assert_eq!(intercepts[0].0, (false, "de".to_owned()));
        assert!((intercepts[0].1 - 0.6).abs() < 1e-12);
        assert_eq!(intercepts[1].0, (false, "en".to_owned()));
        assert!((intercepts[1].1 + 0.4).abs() < 1e-12, "{intercepts:?}");
    }

    #[test]
    fn no_languages_means_no_columns() {
        let rows = [(None, 1.0), (lang(true, "de"), 1.0)];
        let coding = LanguageIntercepts::new(rows.iter().map(|(l, w)| (l, *w)), 1);
        assert_eq!(coding.width(), 0);
        assert!(coding.columns(&lang(true, "de")).is_empty());
        assert!(coding.intercepts(&[]).is_empty());
    }

    proptest! {
        /// Whatever the fitted weights, each group's intercepts sum to zero over its
        /// rows, and a row's columns dotted with the fitted weights give its
        /// language's intercept (0 for a row without one).
        #[test]
        fn intercepts_sum_to_zero_and_match_the_columns(
            rows in prop::collection::vec(
                (prop::option::of((any::<bool>(), prop::sample::select(vec!["ar", "de", "en", "es"]))), 0.1f64..10.0),
                0..80,
            ),
            betas in prop::collection::vec(-3.0f64..3.0, 8),
        ) {
            let rows: Vec<(RowLanguage, f64)> = rows
                .into_iter()
                .map(|(l, w)| (l.map(|(g, l)| (g, l.to_owned())), w))
                .collect();
            let coding = LanguageIntercepts::new(rows.iter().map(|(l, w)| (l, *w)), 3);
            let fitted = &betas[..coding.width()];
            let intercepts: BTreeMap<(bool, String), f64> = coding.intercepts(fitted).into_iter().collect();
            for group in [false, true] {
                let sum: f64 = rows
                    .iter()
                    .filter_map(|(l, w)| l.as_ref().filter(|(g, _)| *g == group).map(|k| (k, w)))
                    .filter_map(|(k, w)| intercepts.get(k).map(|b| b * w))
                    .sum();
                prop_assert!(sum.abs() < 1e-6, "group {group}: {sum}");
            }
            for (l, _) in &rows {
                let dot: f64 = coding.columns(l).iter().zip(fitted).map(|(x, b)| x * b).sum();
                let want = l.as_ref().and_then(|k| intercepts.get(k)).copied().unwrap_or(0.0);
                prop_assert!((dot - want).abs() < 1e-9, "{l:?}: {dot} vs {want}");
            }
        }
    }
}
