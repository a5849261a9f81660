//! One module per stage kind, named as the kind is in manifests. `torch_job` runs the kinds
//! whose work is done in `binarylm-torch`; `pretrain`, `sft`, `dpo`, `eval` and `export` hold only
//! those kinds' `show` summaries.

pub mod data;
pub mod dpo;
pub mod eval;
pub mod export;
pub mod pretrain;
pub mod sft;
pub mod tokenizer;
pub mod torch_job;
