//! The routing-policy language: operators write rules such as
//! `when tokens < 500 and lang == zh -> deepseek fallback siliconflow`; this crate parses, checks, formats and
//! compiles them, and evaluates the compiled form on every request.
//!
//! Two layers: the runtime (`artifact`, `eval`, `scheme`, `store` (the published layout), `catalog` types: serde, sha2, regex-lite only) is
//! what the gateway links, on Workers and natively; the `compiler` feature adds the parser (pest), checker,
//! formatter, compiler and miette rendering, and `cli` the `gateway-policy` binary.

pub mod artifact;
pub mod catalog;
pub mod diagnostic;
pub mod eval;
pub mod prices;
pub mod scheme;
pub mod store;
pub mod syntax;

#[cfg(feature = "compiler")]
pub mod check;
#[cfg(feature = "compiler")]
pub mod compile;
#[cfg(feature = "compiler")]
pub mod load;

pub use artifact::{Artifact, Target};
pub use eval::{Decision, Outcome, Policy};
pub use scheme::{Attrs, HealthAttrs};

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}
