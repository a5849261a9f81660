//! One module per stage kind, named as the kind is in manifests. `torch_job` runs the kinds
//! whose work is done in `binarylm-torch`; `pretrain` holds only that kind's `show` summary.

pub mod data;
pub mod pretrain;
pub mod tokenizer;
pub mod torch_job;
