//! Shared helpers of the examples and cross-backend tests.
