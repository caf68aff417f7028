use crate::Code;

/// A boxed error, the cause carried by codec failures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Encoding failed (wire code 2).
    #[error("marshal failed: {0}")]
    Encode(#[source] BoxError),
    /// Decoding failed (wire code 3).
    #[error("unmarshal failed: {0}")]
    Decode(#[source] BoxError),
}

impl CodecError {
    /// An encoding failure caused by `cause`.
    pub fn encode(cause: impl Into<BoxError>) -> Self {
        CodecError::Encode(cause.into())
    }

    /// A decoding failure caused by `cause`.
    pub fn decode(cause: impl Into<BoxError>) -> Self {
        CodecError::Decode(cause.into())
    }

    /// The wire code: [`Code::MARSHAL`] or [`Code::UNMARSHAL`].
    pub fn code(&self) -> Code {
        match self {
            CodecError::Encode(_) => Code::MARSHAL,
            CodecError::Decode(_) => Code::UNMARSHAL,
        }
    }
}
