//! End-to-end tests of the cachectl binary.
