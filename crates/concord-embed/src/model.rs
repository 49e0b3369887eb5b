use std::path::{Path, PathBuf};

use concord_core::{UnitVector, config::ModelConfig};
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

impl Model {
    /// Loads the model named by `config`, checking every file first.
    pub fn load(config: &ModelConfig) -> Result<Self, EmbedError> {
        let files = ModelFiles::from_config(config);
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
        let mut options = InitOptionsUserDefined::new().with_max_length(config.max_tokens);
        if config.intra_threads > 0 {
            options.intra_threads = Some(config.intra_threads);
        }
        if !config.spin {
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
            name: config.name.clone(),
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
