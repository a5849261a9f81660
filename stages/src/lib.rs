//! The stage kinds of binarylm that run inside the `binarylm` process. This crate never links
//! libtorch (loading it costs about a second per process); torch work lives in `stages-torch`.
