//! The policy language's syntax: the tree, the parser (pest, `grammar/policy.pest`) and the formatter.

pub mod ast;
#[cfg(feature = "compiler")]
pub mod fmt;
#[cfg(feature = "compiler")]
pub mod parse;
