use std::path::{Path, PathBuf};

use concord_core::{
    UnitVector,
    config::{HeadlineModelConfig, ModelConfig},
};
use fastembed::{InitOptionsUserDefined, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel};

use crate::EmbedError;

/// Paths of the files `models/install.sh` writes.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
    pub ort_dylib: PathBuf,
}

impl ModelFiles {
    pub fn from_config(config: &ModelConfig) -> Self {
        Self {
            dir: config.dir.clone(),
            ort_dylib: config.ort_dylib.clone(),
        }
    }

    pub fn onnx(&self) -> PathBuf {
        self.dir.join("model.onnx")
    }

    pub fn tokenizer(&self) -> PathBuf {
        self.dir.join("tokenizer.json")
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, EmbedError> {
        read_file(&self.dir.join(name))
    }

    /// Fails with the first missing file, so start-up names exactly what is absent.
    pub fn check(&self) -> Result<(), EmbedError> {
        for path in [
            self.ort_dylib.clone(),
            self.onnx(),
            self.tokenizer(),
            self.dir.join("config.json"),
            self.dir.join("special_tokens_map.json"),
            self.dir.join("tokenizer_config.json"),
        ] {
            if !path.is_file() {
                return Err(EmbedError::MissingFile { path });
            }
        }
        Ok(())
    }
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, EmbedError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => EmbedError::MissingFile {
            path: path.to_path_buf(),
        },
        _ => EmbedError::Unreadable {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Loads ONNX Runtime from `path` once per process; later calls are no-ops.
fn init_runtime(path: &Path) -> Result<(), EmbedError> {
    let absolute = std::path::absolute(path).map_err(|e| EmbedError::Runtime {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    ort::init_from(&absolute)
        .map(drop)
        .map_err(|e| EmbedError::Runtime {
            path: absolute,
            reason: e.to_string(),
        })
}

/// The sentence model. `embed` takes `&mut self`: one owner, one thread.
pub struct Model {
    inner: TextEmbedding,
    name: String,
    dim: usize,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

/// How to open one model folder.
struct Spec<'a> {
    files: ModelFiles,
    name: &'a str,
    max_tokens: usize,
    intra_threads: usize,
    spin: bool,
}

impl Model {
    /// Loads the model named by `config`, checking every file first.
    pub fn load(config: &ModelConfig) -> Result<Self, EmbedError> {
        Self::open(Spec {
            files: ModelFiles::from_config(config),
            name: &config.name,
            max_tokens: config.max_tokens,
            intra_threads: config.intra_threads,
            spin: config.spin,
        })
    }

    fn open(spec: Spec<'_>) -> Result<Self, EmbedError> {
        let Spec {
            files,
            name,
            max_tokens,
            intra_threads,
            spin,
        } = spec;
        files.check()?;
        init_runtime(&files.ort_dylib)?;
        let tokenizer_files = TokenizerFiles {
            tokenizer_file: files.read("tokenizer.json")?,
            config_file: files.read("config.json")?,
            special_tokens_map_file: files.read("special_tokens_map.json")?,
            tokenizer_config_file: files.read("tokenizer_config.json")?,
        };
        let onnx = read_file(&files.onnx())?;
        let user_model = UserDefinedEmbeddingModel::new(onnx, tokenizer_files);
        let mut options = InitOptionsUserDefined::new().with_max_length(max_tokens);
        if intra_threads > 0 {
            options.intra_threads = Some(intra_threads);
        }
        if !spin {
            options.session_config = vec![
                ("session.intra_op.allow_spinning".into(), "0".into()),
                ("session.inter_op.allow_spinning".into(), "0".into()),
            ];
        }
        let load_err = |reason: String| EmbedError::Load {
            dir: files.dir.clone(),
            reason,
        };
        let mut inner = TextEmbedding::try_new_from_user_defined(user_model, options)
            .map_err(|e| load_err(e.to_string()))?;
        // One probe both proves the graph runs and tells the dimension.
        let probe = inner
            .embed(["concord"], None)
            .map_err(|e| load_err(format!("probe inference failed: {e}")))?;
        let dim = probe.first().map_or(0, Vec::len);
        if dim == 0 {
            return Err(load_err("probe inference returned no vector".into()));
        }
        Ok(Self {
            inner,
            name: name.to_owned(),
            dim,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds `texts` in one model call; one unit vector per text, in order.
    pub fn embed<S: AsRef<str> + Send + Sync>(
        &mut self,
        texts: &[S],
    ) -> Result<Vec<UnitVector>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let raw = self
            .inner
            .embed(texts, Some(texts.len()))
            .map_err(|e| EmbedError::Inference(e.to_string()))?;
        if raw.len() != texts.len() {
            return Err(EmbedError::Arity {
                expected: texts.len(),
                got: raw.len(),
            });
        }
        raw.into_iter()
            .map(|v| UnitVector::normalize(v).map_err(EmbedError::from))
            .collect()
    }
}

/// The second encoder, for titles only (`[headline_model]`): reads the configured
/// prefix and the title, cut at its own token budget.
#[derive(Debug)]
pub struct HeadlineModel {
    model: Model,
    prefix: String,
}

impl HeadlineModel {
    /// Loads the headline model when `headline.enabled`, with the sentence model's
    /// runtime and spinning (`model`); `None` when it is off.
    pub fn load(
        model: &ModelConfig,
        headline: &HeadlineModelConfig,
    ) -> Result<Option<Self>, EmbedError> {
        if !headline.enabled {
            return Ok(None);
        }
        let inner = Model::open(Spec {
            files: ModelFiles {
                dir: headline.dir.clone(),
                ort_dylib: model.ort_dylib.clone(),
            },
            name: &headline.name,
            max_tokens: headline.max_tokens,
            intra_threads: headline.intra_threads,
            spin: model.spin,
        })?;
        Ok(Some(Self {
            model: inner,
            prefix: headline.prefix.clone(),
        }))
    }

    pub fn name(&self) -> &str {
        self.model.name()
    }

    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    /// Embeds `titles` (each behind the prefix) in one model call, in order.
    pub fn embed<S: AsRef<str>>(&mut self, titles: &[S]) -> Result<Vec<UnitVector>, EmbedError> {
        let texts: Vec<String> = titles
            .iter()
            .map(|t| format!("{}{}", self.prefix, t.as_ref()))
            .collect();
        self.model.embed(&texts)
    }
}

/// The models one embed worker owns: the sentence model for every text, and the
/// headline model for articles' titles where it is configured.
#[derive(Debug)]
pub struct Encoders {
    pub text: Model,
    pub headline: Option<HeadlineModel>,
}

impl Encoders {
    /// Loads both models as configured.
    pub fn load(model: &ModelConfig, headline: &HeadlineModelConfig) -> Result<Self, EmbedError> {
        Ok(Self {
            text: Model::load(model)?,
            headline: HeadlineModel::load(model, headline)?,
        })
    }
}

impl From<Model> for Encoders {
    fn from(text: Model) -> Self {
        Self {
            text,
            headline: None,
        }
    }
}
