//! Boosted trees for the join decision between two headlines (`join_rule =
//! "boosted"`): a sum of small regression trees over the join model's features
//! gives the log-odds that the article reports the candidate's event.
//!
//! The trees are fitted by `concord fit-join --trees` (`concord_eval::boost`) and
//! shipped as `config/join-trees.json`, embedded in the binary like
//! `config/default.toml`; `join_trees` in `[cluster.rule]` names another file.
//! A file is validated whole when it is read (every index in range, every child
//! after its parent, so evaluation always ends), never trusted at decision time.

use std::{collections::BTreeMap, path::Path};

use concord_core::Lang;
use serde::{Deserialize, Serialize};

use crate::rule::JoinFeatures;

/// `config/join-trees.json` as built: the trees `join_trees = ""` reads.
pub const EMBEDDED_TREES: &str = include_str!("../../../config/join-trees.json");

/// `config/join-trees-headline.json`, the second look's trees (`headline_trees`), built
/// into the binary.
pub const EMBEDDED_HEADLINE_TREES: &str = include_str!("../../../config/join-trees-headline.json");

/// The `format` a trees file declares; another is refused, not guessed at.
pub const TREES_FORMAT: &str = "concord-join-trees/1";

/// The prefix of a language input: `language:ar` is 1 when the article and its
/// best-linked member share Arabic, else 0.
pub const LANGUAGE_INPUT: &str = "language:";

/// A trees file as written (`concord fit-join --trees`) and read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreesFile {
    /// [`TREES_FORMAT`].
    pub format: String,
    /// What each split reads: a [`JoinFeatures::NAMES`] name or `language:<code>`.
    pub inputs: Vec<String>,
    /// The log-odds before any tree.
    pub base: f32,
    /// How it was fitted (free-form: rows, parameters, constraints), for people.
    #[serde(default)]
    pub fitted: BTreeMap<String, serde_json::Value>,
    /// Each tree's nodes, its root first.
    pub trees: Vec<Vec<NodeFile>>,
}

/// One node of a tree in a file: a split (`input <= at` goes `left`) or a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NodeFile {
    Split {
        input: usize,
        at: f32,
        left: usize,
        right: usize,
    },
    Leaf {
        leaf: f32,
    },
}

/// Why a trees file was refused.
#[derive(Debug, thiserror::Error)]
pub enum TreesError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("not a trees file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("format is `{0}`, expected `{TREES_FORMAT}`")]
    Format(String),
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Input {
    Feature(usize),
    Language(Lang),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Node {
    Split {
        input: u16,
        at: f32,
        left: u32,
        right: u32,
    },
    Leaf(f32),
}

/// Validated trees, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinTrees {
    inputs: Vec<Input>,
    base: f32,
    /// Every tree's nodes, one after another; children index into this.
    nodes: Vec<Node>,
    roots: Vec<u32>,
}

impl JoinTrees {
    /// The trees shipped in the binary.
    pub fn embedded() -> Result<Self, TreesError> {
        Self::parse(EMBEDDED_TREES)
    }

    /// `join_trees` as configured: empty for the embedded trees, else a file.
    pub fn load(path: &str) -> Result<Self, TreesError> {
        Self::load_or(path, EMBEDDED_TREES)
    }

    /// `headline_trees` as configured: empty for the embedded ones, else a file.
    pub fn load_headline(path: &str) -> Result<Self, TreesError> {
        Self::load_or(path, EMBEDDED_HEADLINE_TREES)
    }

    fn load_or(path: &str, embedded: &str) -> Result<Self, TreesError> {
        if path.is_empty() {
            return Self::parse(embedded);
        }
        let text = std::fs::read_to_string(Path::new(path)).map_err(|source| TreesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(json: &str) -> Result<Self, TreesError> {
        Self::from_file(&serde_json::from_str(json)?)
    }

    pub fn from_file(file: &TreesFile) -> Result<Self, TreesError> {
        let invalid = |field: String, reason: &str| TreesError::Invalid {
            field,
            reason: reason.to_owned(),
        };
        if file.format != TREES_FORMAT {
            return Err(TreesError::Format(file.format.clone()));
        }
        if file.inputs.len() > usize::from(u16::MAX) {
            return Err(invalid("inputs".into(), "too many inputs"));
        }
        let inputs = file
            .inputs
            .iter()
            .enumerate()
            .map(|(i, name)| {
                if let Some(code) = name.strip_prefix(LANGUAGE_INPUT) {
                    Lang::parse(code)
                        .map(Input::Language)
                        .map_err(|e| invalid(format!("inputs[{i}]"), &e.to_string()))
                } else {
                    JoinFeatures::NAMES
                        .iter()
                        .position(|n| n == name)
                        .map(Input::Feature)
                        .ok_or_else(|| {
                            invalid(format!("inputs[{i}]"), &format!("unknown input `{name}`"))
                        })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !file.base.is_finite() {
            return Err(invalid("base".into(), "not a finite number"));
        }
        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(file.trees.len());
        for (t, tree) in file.trees.iter().enumerate() {
            if tree.is_empty() {
                return Err(invalid(format!("trees[{t}]"), "a tree needs a node"));
            }
            let offset = nodes.len();
            roots.push(
                u32::try_from(offset).map_err(|_| invalid("trees".into(), "too many nodes"))?,
            );
            for (i, node) in tree.iter().enumerate() {
                let field = |what: &str| format!("trees[{t}][{i}].{what}");
                nodes.push(match *node {
                    NodeFile::Leaf { leaf } if leaf.is_finite() => Node::Leaf(leaf),
                    NodeFile::Leaf { .. } => {
                        return Err(invalid(field("leaf"), "not a finite number"));
                    }
                    NodeFile::Split {
                        input,
                        at,
                        left,
                        right,
                    } => {
                        if input >= inputs.len() {
                            return Err(invalid(field("input"), "no such input"));
                        }
                        if !at.is_finite() {
                            return Err(invalid(field("at"), "not a finite number"));
                        }
                        for (name, child) in [("left", left), ("right", right)] {
                            // Children come after their parent: no cycle, and
                            // scoring a tree always reaches a leaf.
                            if child <= i || child >= tree.len() {
                                return Err(invalid(
                                    field(name),
                                    "a child must be a later node of the same tree",
                                ));
                            }
                        }
                        let at_offset = |c: usize| {
                            u32::try_from(offset + c)
                                .map_err(|_| invalid("trees".into(), "too many nodes"))
                        };
                        Node::Split {
                            input: input as u16,
                            at,
                            left: at_offset(left)?,
                            right: at_offset(right)?,
                        }
                    }
                });
            }
        }
        Ok(Self {
            inputs,
            base: file.base,
            nodes,
            roots,
        })
    }

    /// How many trees.
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Whether every feature the trees read is present in `f` (finite: an absent
    /// [`JoinFeatures::headline_cosine`] is NaN).
    pub fn can_score(&self, f: &JoinFeatures) -> bool {
        let values = f.values();
        self.inputs.iter().all(|input| match input {
            Input::Feature(i) => values[*i].is_finite(),
            Input::Language(_) => true,
        })
    }

    /// The log-odds that the article reports the candidate's event.
    pub fn logit(&self, f: &JoinFeatures) -> f32 {
        let values = f.values();
        let value = |input: u16| match self.inputs[usize::from(input)] {
            Input::Feature(i) => values[i],
            Input::Language(lang) => {
                if f.same_language == Some(lang) {
                    1.0
                } else {
                    0.0
                }
            }
        };
        let mut sum = self.base;
        for &root in &self.roots {
            let mut at = root as usize;
            loop {
                match self.nodes[at] {
                    Node::Leaf(v) => {
                        sum += v;
                        break;
                    }
                    Node::Split {
                        input,
                        at: threshold,
                        left,
                        right,
                    } => {
                        at = if value(input) <= threshold {
                            left as usize
                        } else {
                            right as usize
                        };
                    }
                }
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(trees: Vec<Vec<NodeFile>>) -> TreesFile {
        TreesFile {
            format: TREES_FORMAT.into(),
            inputs: vec!["best_cosine".into(), "language:ar".into()],
            base: -1.0,
            fitted: BTreeMap::new(),
            trees,
        }
    }

    fn split(input: usize, at: f32, left: usize, right: usize) -> NodeFile {
        NodeFile::Split {
            input,
            at,
            left,
            right,
        }
    }

    fn leaf(leaf: f32) -> NodeFile {
        NodeFile::Leaf { leaf }
    }

    #[test]
    fn the_logit_sums_the_base_and_each_trees_leaf() {
        let trees = JoinTrees::from_file(&file(vec![
            vec![split(0, 0.5, 1, 2), leaf(-0.5), leaf(2.0)],
            vec![split(1, 0.5, 1, 2), leaf(0.0), leaf(0.25)],
        ]))
        .unwrap();
        let ar = Lang::parse("ar").unwrap();
        let low = JoinFeatures {
            best_cosine: 0.5,
            ..JoinFeatures::default()
        };
        // `<=` goes left.
        assert_eq!(trees.logit(&low), -1.5);
        let high = JoinFeatures {
            best_cosine: 0.6,
            same_language: Some(ar),
            ..low
        };
        assert_eq!(trees.logit(&high), 1.25);
        let english = JoinFeatures {
            same_language: Some(Lang::parse("en").unwrap()),
            ..high
        };
        assert_eq!(trees.logit(&english), 1.0);
    }

    #[test]
    fn trees_that_read_an_absent_headline_cosine_cannot_score() {
        let mut reads_headline = file(vec![vec![split(0, 0.9, 1, 2), leaf(-1.0), leaf(1.0)]]);
        reads_headline.inputs = vec!["headline_cosine".into()];
        let trees = JoinTrees::from_file(&reads_headline).unwrap();
        let absent = JoinFeatures::default();
        assert!(!trees.can_score(&absent));
        let present = JoinFeatures {
            headline_cosine: Some(0.95),
            ..absent
        };
        assert!(trees.can_score(&present));
        assert_eq!(trees.logit(&present), 0.0);
        // Trees that do not read it score either.
        let other = JoinTrees::from_file(&file(vec![vec![leaf(0.5)]])).unwrap();
        assert!(other.can_score(&absent));
    }

    #[test]
    fn a_file_that_could_loop_or_point_outside_is_refused() {
        let refused = |trees| JoinTrees::from_file(&file(trees)).unwrap_err().to_string();
        assert!(refused(vec![vec![split(0, 0.5, 0, 1), leaf(0.0)]]).contains("trees[0][0].left"));
        assert!(refused(vec![vec![split(0, 0.5, 1, 3), leaf(0.0), leaf(1.0)]]).contains("right"));
        assert!(refused(vec![vec![split(2, 0.5, 1, 2), leaf(0.0), leaf(1.0)]]).contains("input"));
        assert!(refused(vec![vec![]]).contains("trees[0]"));
        let mut unknown = file(vec![]);
        unknown.inputs.push("cosine".into());
        assert!(
            JoinTrees::from_file(&unknown)
                .unwrap_err()
                .to_string()
                .contains("inputs[2]")
        );
        let mut other = file(vec![]);
        other.format = "concord-join-trees/2".into();
        assert!(matches!(
            JoinTrees::from_file(&other),
            Err(TreesError::Format(_))
        ));
        assert!(matches!(
            JoinTrees::parse(r#"{"format": 1}"#),
            Err(TreesError::Json(_))
        ));
    }

    proptest::proptest! {
        /// Any list of nodes is refused or scores to a finite number: never a
        /// panic, never a loop.
        #[test]
        fn any_tree_is_refused_or_scores(
            nodes in proptest::collection::vec(
                (0usize..4, -2.0f32..2.0, 0usize..8, 0usize..8, proptest::bool::ANY),
                0..8,
            ),
            best in -1.0f32..1.0,
        ) {
            let tree = nodes
                .iter()
                .map(|&(input, at, left, right, is_leaf)| {
                    if is_leaf { leaf(at) } else { split(input, at, left, right) }
                })
                .collect();
            if let Ok(trees) = JoinTrees::from_file(&file(vec![tree])) {
                let f = JoinFeatures { best_cosine: best, ..JoinFeatures::default() };
                proptest::prop_assert!(trees.logit(&f).is_finite());
            }
        }
    }

    #[test]
    fn the_embedded_trees_parse() {
        let trees = JoinTrees::embedded().unwrap();
        assert!(!trees.is_empty());
        assert!(trees.logit(&JoinFeatures::default()).is_finite());
    }

    #[test]
    fn the_embedded_headline_trees_read_the_headline_cosine() {
        let trees = JoinTrees::load_headline("").unwrap();
        let far = JoinFeatures {
            best_cosine: 0.35,
            centroid_cosine: 0.3,
            days_to_best: 0.2,
            ln_volume: 1.0,
            gram_cosine: 0.2,
            gram_max: 0.2,
            headline_cosine: Some(0.80),
            ..JoinFeatures::default()
        };
        let near = JoinFeatures {
            headline_cosine: Some(0.93),
            ..far
        };
        assert!(trees.can_score(&near));
        assert!(trees.logit(&near) > trees.logit(&far) + 0.5);
        // Without a headline cosine they do not score at all.
        let absent = JoinFeatures {
            headline_cosine: None,
            ..far
        };
        assert!(!trees.can_score(&absent));
    }

    #[test]
    fn the_embedded_trees_read_the_titles_grams() {
        // Two headlines at one cosine, a day apart: the one that spells the same
        // names (a high 4-gram cosine) is the likelier same event.
        let trees = JoinTrees::embedded().unwrap();
        let apart = JoinFeatures {
            best_cosine: 0.35,
            centroid_cosine: 0.3,
            days_to_best: 1.0,
            ln_volume: 1.0,
            gram_cosine: 0.05,
            gram_max: 0.05,
            ..JoinFeatures::default()
        };
        let named = JoinFeatures {
            gram_cosine: 0.6,
            gram_max: 0.6,
            ..apart
        };
        assert!(trees.logit(&named) > trees.logit(&apart) + 0.5);
    }
}
