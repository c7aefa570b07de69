//! How a session uses the context the server has: Claude Code's budget for a custom
//! model, rendered so that it compacts before the server refuses a request. Pure.
//!
//! Claude Code 2.1.330, for a model it does not know: the window is
//! `CLAUDE_CODE_MAX_CONTEXT_TOKENS`; it reserves `min(max output, 20000)` tokens for the
//! answer and compacts once a request reaches `window - reserve - 13000` (a fixed
//! buffer); it refuses to send at `window - reserve - 3000`. Its default max output
//! (32,000) leaves nothing of a 32k window (the "2139% until auto-compact" of a session
//! without these variables). Its own first request (system prompt and tools) is about
//! 13,000 tokens.

use serde::Serialize;

/// Claude Code's fixed buffer below the window where it compacts.
pub const COMPACT_BUFFER: u32 = 13_000;

/// About how many tokens Claude Code's own first request takes (system prompt, tools).
pub const PREFIX: u32 = 13_000;

/// Claude Code caps the reserve for the answer at this.
const RESERVE_CAP: u32 = 20_000;

/// What Claude Code is told for a server context of `window` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// `CLAUDE_CODE_MAX_CONTEXT_TOKENS`: the server's context.
    pub window: u32,
    /// `CLAUDE_CODE_MAX_OUTPUT_TOKENS`: the most one answer may take.
    pub output: u32,
    /// Where Claude Code compacts (tokens in a request).
    pub compact_at: u32,
    /// Room for the conversation before the first compaction, after Claude Code's own
    /// first request.
    pub room: u32,
}

/// The budget for a server context of `window` tokens: one sixteenth of it for an
/// answer (at least 2,048, at most 16,000), so that the conversation keeps most of a
/// small window and a request never reaches the server's limit (a turn adds less than
/// the 13,000-token buffer).
pub fn budget(window: u32) -> Budget {
    let output = (window / 16).clamp(2_048, 16_000).min(RESERVE_CAP);
    let compact_at = window.saturating_sub(output + COMPACT_BUFFER);
    Budget {
        window,
        output,
        compact_at,
        room: compact_at.saturating_sub(PREFIX),
    }
}

/// A note when the window is too small to be comfortable, `None` otherwise.
pub fn note(b: &Budget) -> Option<String> {
    if b.room >= 16_000 {
        return None;
    }
    Some(if b.room == 0 {
        format!(
            "a context of {} tokens is smaller than Claude Code needs to compact in time \
             (its own first request is about {PREFIX} tokens, and it compacts at {}): \
             restart llama-server with `-c 32768` or more",
            b.window, b.compact_at
        )
    } else {
        format!(
            "a context of {} tokens leaves about {} tokens of conversation before Claude \
             Code compacts (at {} tokens, answers up to {}); 65536 or more is comfortable",
            b.window, b.room, b.compact_at, b.output
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_32k_server_compacts_before_it_refuses() {
        let b = budget(32_768);
        assert_eq!(b.output, 2_048);
        assert_eq!(b.compact_at, 17_720);
        // A request below the compaction point plus one turn (less than the buffer) plus
        // the answer stays within the server's context.
        assert_eq!(b.compact_at + COMPACT_BUFFER + b.output, b.window);
        assert!(note(&b).is_some());
    }

    #[test]
    fn large_windows_keep_a_bounded_answer() {
        assert_eq!(budget(131_072).output, 8_192);
        assert_eq!(budget(1_000_000).output, 16_000);
        assert!(note(&budget(131_072)).is_none());
        assert_eq!(budget(8_192).room, 0);
        assert!(note(&budget(8_192)).unwrap().contains("smaller than"));
    }
}
