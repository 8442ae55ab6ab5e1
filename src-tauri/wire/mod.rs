//! Client and provider wire formats, each translated to and from [`crate::chat`].

pub mod anthropic;
pub mod openai;
pub mod seed;

/// Why an upstream event could not be used.
#[derive(Debug)]
pub enum DecodeError {
    /// Not the documented format.
    Malformed(String),
    /// A well-formed error the upstream sent inside the stream; holds its message.
    Upstream(String),
}
