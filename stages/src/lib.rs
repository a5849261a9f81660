//! The stage kinds of binarylm that run inside the `binarylm` process, the adapter that runs
//! the others in `binarylm-torch`, and every kind's `binarylm show` summary, each under
//! `kinds/<kind name>`. This crate never links libtorch (loading it costs about a second per
//! process); torch work lives in `stages-torch`. (The BPE library itself is the `tokenizer`
//! crate, `stages/tokenizer`; `kinds::tokenizer` is the stage that trains and applies it.)

pub mod kinds;

pub use kinds::data::DataKind;
pub use kinds::tokenizer::TokenizerStage;
pub use kinds::torch_job::TorchJobKind;

use std::sync::Arc;

use pipelines::Runner;

/// The implementations of the kinds that run in this process, by kind name: one line per
/// kind. Kinds whose descriptor says `Runner::Torch` need no line: they all run through
/// [`TorchJobKind`].
fn in_process(name: &str) -> Option<Arc<dyn runtime::StageKind>> {
    Some(match name {
        "command" => Arc::new(runtime::command::CommandKind),
        "data" => Arc::new(DataKind),
        "tokenizer" => Arc::new(TokenizerStage),
        _ => return None,
    })
}

/// Every kind of the manifest schema with its implementation, ready for the executor. A kind
/// without one (a descriptor added before its code) is left out, and `plan`/`run` refuse its
/// stages by name.
pub fn kinds() -> runtime::Kinds {
    let mut kinds = runtime::Kinds::default();
    for info in pipelines::kind_infos() {
        let implementation = match info.runner {
            Runner::Torch => Some(Arc::new(TorchJobKind::new(info.name)) as Arc<_>),
            Runner::InProcess => in_process(info.name),
        };
        if let Some(i) = implementation {
            kinds.register(i);
        }
    }
    kinds
}

/// A readable summary of an artifact, for `binarylm show`, when its kind has one: `None` for
/// kinds without a renderer, `Some(Err)` when the artifact's files cannot be read. One line per
/// kind; each renders in its own module.
pub fn render_artifact(kind: &str, dir: &std::path::Path) -> Option<Result<String, String>> {
    let render: fn(&std::path::Path) -> Result<String, String> = match kind {
        "data" => kinds::data::render::render,
        "tokenizer" => kinds::tokenizer::render::render,
        "pretrain" => kinds::pretrain::render,
        "eval" => kinds::eval::render,
        "sft" => kinds::sft::render,
        "dpo" => kinds::dpo::render,
        "export" => kinds::export::render,
        _ => return None,
    };
    Some(render(dir))
}

#[cfg(test)]
mod tests {
    /// Every kind the manifest accepts has an implementation in this build.
    #[test]
    fn every_kind_has_an_implementation() {
        let kinds = super::kinds();
        for info in pipelines::kind_infos() {
            let k = kinds
                .get(info.name)
                .unwrap_or_else(|| panic!("kind `{}` has no implementation", info.name));
            assert_eq!(k.name(), info.name);
        }
    }
}
