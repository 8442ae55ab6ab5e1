//! Client and provider wire formats, each translated to and from [`crate::chat`].

pub mod openai;
pub mod seed;
