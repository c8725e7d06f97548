//! Values are serde JSON: openraft's types and the application's data are serde types,
//! and JSON handles every serde data model feature (untagged enums, maps with
//! non-string keys are refused loudly rather than misread). A compact binary encoding
//! can replace it behind a new layout version (`keys::FORMAT`).

use openraft::AnyError;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, AnyError> {
    serde_json::to_vec(value).map_err(|e| AnyError::new(&e))
}

/// Decodes the value stored under `key` (named in the error, so a damaged value can be
/// found).
pub(crate) fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, AnyError> {
    serde_json::from_slice(bytes).map_err(|e| {
        AnyError::new(&e).add_context(|| {
            format!(
                "decoding the value of key {:?}",
                strata::Bytes::copy_from_slice(key)
            )
        })
    })
}
