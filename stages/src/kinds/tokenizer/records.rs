//! Reading a data stage's splits: the `records` crate, shared with the torch kinds.

pub use records::{read_split, split_path, Record, RecordsError, ASSISTANT, END, USER};
