//! stage-04-futures (being written).
