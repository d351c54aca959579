//! The version token of a state: what a caller outside mamfast holds between reading the whole
//! state (`state export --token-file`) and writing it back (`state import --if-token`), so that
//! the write is refused when anything wrote in between, as `If-Match` does with an ETag.
//!
//! The token is derived from the bytes of the state as the writer writes it, which are the
//! file's own bytes for a file either tool wrote. Any change by any writer (mamfast, the Python
//! tool) changes them, and with them the token; a rewrite of the very same bytes keeps it, which
//! loses nothing. The hash is FNV-1a (64 bits) with the length beside it: it guards against
//! concurrent writers, not against an adversary (who could write the file anyway), so a
//! cryptographic hash and its crate would buy nothing here.

use std::io::{self, Write};

use super::format::write_state;
use crate::state::State;

/// The token of `state`: `fnv1a64-<length>-<hash>`, both in lowercase hex.
pub fn state_token(state: &State) -> String {
    let mut hasher = TokenWriter::default();
    write_state(&mut hasher, state).expect("hashing cannot fail");
    hasher.token()
}

/// A writer that hashes what is written to it; [`TokenWriter::token`] is the token of the bytes
/// so far. A command that writes the state anyway (`state export`) tees into it.
#[derive(Debug, Clone, Copy)]
pub struct TokenWriter {
    hash: u64,
    len: u64,
}

impl Default for TokenWriter {
    fn default() -> Self {
        TokenWriter {
            hash: 0xcbf2_9ce4_8422_2325,
            len: 0,
        }
    }
}

impl TokenWriter {
    pub fn token(&self) -> String {
        format!("fnv1a64-{:x}-{:016x}", self.len, self.hash)
    }
}

impl Write for TokenWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &byte in buf {
            self.hash = (self.hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes to both: the output and the token's hash.
pub struct Tee<'a, W: Write> {
    pub out: W,
    pub token: &'a mut TokenWriter,
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.token.write_all(&buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_follows_every_byte_and_the_length() {
        let of = |bytes: &[u8]| {
            let mut t = TokenWriter::default();
            t.write_all(bytes).unwrap();
            t.token()
        };
        // FNV-1a 64 of the empty input and of "a" (the published test vectors).
        assert_eq!(of(b""), "fnv1a64-0-cbf29ce484222325");
        assert_eq!(of(b"a"), "fnv1a64-1-af63dc4c8601ec8c");
        assert_ne!(of(b"ab"), of(b"ba"));
    }

    #[test]
    fn a_change_to_an_entry_changes_the_token_and_a_tee_agrees() {
        let mut state = State::default();
        let empty = state_token(&state);
        crate::state::ops::mark_failed(
            &mut state,
            "B1",
            "boom",
            None,
            &Default::default(),
            "2026-11-26T10:00:00.000000+00:00",
        )
        .unwrap();
        let one = state_token(&state);
        assert_ne!(empty, one);
        let mut token = TokenWriter::default();
        let mut out = Vec::new();
        write_state(
            Tee {
                out: &mut out,
                token: &mut token,
            },
            &state,
        )
        .unwrap();
        assert_eq!(token.token(), one);
    }
}
