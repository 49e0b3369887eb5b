//! Layering: embedded defaults < `--config` file < `CONCORD_*` env < flags.

use std::path::Path;

use concord_core::{Config, config::LogFormat};
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use tracing_subscriber::EnvFilter;

pub fn figment(file: Option<&Path>) -> Figment {
    let mut figment = Config::default_figment();
    if let Some(file) = file {
        figment = figment.merge(Toml::file_exact(file));
    }
    // Only section-qualified keys (`CONCORD_<SECTION>__<KEY>`): other CONCORD_* variables
    // (CONCORD_CONFIG, CONCORD_CACHE_DIR of the scripts) are not configuration keys.
    figment.merge(
        Env::prefixed("CONCORD_")
            .filter(|key| key.as_str().contains("__"))
            .split("__"),
    )
}

/// Applies flag overrides (`(key path, value)` pairs) and validates.
pub fn load(figment: Figment, overrides: &[(&str, Option<String>)]) -> anyhow::Result<Config> {
    let mut figment = figment;
    for (key, value) in overrides {
        if let Some(value) = value {
            figment = figment.merge(Serialized::default(key, value));
        }
    }
    Config::from_figment(&figment).map_err(|e| anyhow::anyhow!("configuration rejected: {e}"))
}

pub fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.log.filter.clone()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Tracing for batch commands: warnings only unless RUST_LOG says otherwise,
/// so progress bars and tables stay readable.
pub fn init_tracing_quiet(_config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
