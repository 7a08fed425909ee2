//! One module per provider dialect, mirroring `src/core/src/providers/`.

pub(crate) mod anthropic;
pub(crate) mod azure;
pub(crate) mod compat;
pub(crate) mod deepseek;
pub(crate) mod gemini;
pub(crate) mod openai;
pub(crate) mod openrouter;
pub(crate) mod siliconflow;
pub(crate) mod workers_ai;
