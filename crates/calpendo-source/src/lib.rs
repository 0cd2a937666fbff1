//! calpendo-source (placeholder until its issue lands)
