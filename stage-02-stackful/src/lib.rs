//! stage-02-stackful (being written).
