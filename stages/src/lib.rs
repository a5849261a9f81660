//! The stage kinds of binarylm that run inside the `binarylm` process. This crate never links
//! libtorch (loading it costs about a second per process); torch work lives in `stages-torch`.

pub mod data;
pub mod tokenize;
pub mod torch_job;

pub use data::DataKind;
pub use tokenize::TokenizerStage;
pub use torch_job::TorchJobKind;

/// The stage kinds of this crate plus the runtime's built-in ones, ready for the executor.
pub fn kinds() -> runtime::Kinds {
    let mut kinds = runtime::Kinds::builtin();
    kinds.register(std::sync::Arc::new(DataKind));
    kinds.register(std::sync::Arc::new(TokenizerStage));
    kinds.register(std::sync::Arc::new(torch_job::PRETRAIN));
    kinds.register(std::sync::Arc::new(torch_job::DEPLOY));
    kinds
}

/// A readable summary of an artifact, for `binarylm show`, when its kind has one: `None` for
/// kinds without a renderer, `Some(Err)` when the artifact's files cannot be read. Each kind
/// renders in its own module (`data::render`); add an arm here for a new one.
pub fn render_artifact(kind: &str, dir: &std::path::Path) -> Option<Result<String, String>> {
    match kind {
        "data" => Some(data::render::render(dir)),
        _ => None,
    }
}
