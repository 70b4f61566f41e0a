//! stage-01-asm-fibers (being written).
