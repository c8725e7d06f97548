//! The user's code that options hold: merge operators, compaction filters and the
//! clock. Options are compared and printed, so each is wrapped in a handle compared by
//! identity and shown by name.

use std::sync::Arc;

use strata_core::{Clock, CompactionFilter, MergeOperator};

/// A keyspace's merge operator.
#[derive(Clone)]
pub(crate) struct MergeOperatorHandle(pub Arc<dyn MergeOperator>);

/// A keyspace's compaction filter.
#[derive(Clone)]
pub(crate) struct FilterHandle(pub Arc<dyn CompactionFilter>);

/// The database's clock (expiry of values with a time to live).
#[derive(Clone)]
pub(crate) struct ClockHandle(pub Arc<dyn Clock>);

impl std::fmt::Debug for MergeOperatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MergeOperator")
            .field(&self.0.name())
            .finish()
    }
}

impl std::fmt::Debug for FilterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CompactionFilter")
            .field(&self.0.name())
            .finish()
    }
}

impl std::fmt::Debug for ClockHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

impl PartialEq for MergeOperatorHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl PartialEq for FilterHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
