//! stage-05-waker-reactor (being written).
