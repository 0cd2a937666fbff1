//! calpendo-fake (placeholder until its issue lands)
