//! Oracle as a source (cargo feature `oracle`).
