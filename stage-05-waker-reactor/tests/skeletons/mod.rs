//! Skeletons for chapter 5's exercises 7 and 8.

pub mod join_set;
pub mod shutdown_timeout;
