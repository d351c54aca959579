//! The holes a hostile tester and a lockstep run against the Python tool found in the promise
//! "never loses the state", one module per group. Every test here failed on the code before
//! its fix; RELIABILITY.md names them beside the guarantee each one checks.

pub(crate) mod durable;
mod fields;
mod lock;
mod parse;
mod paths;
mod settle;
mod text;
