//! stage-06-mapreduce (being written).
