//! Generated states that look like the pipeline's own (see `tests/fixtures/`): ASIN and path
//! IDs, non-ASCII titles, naive Python timestamps and mamfast's offset ones, most releases
//! `COMPLETE`, some in progress, about one in ten failed. Deterministic for a given seed.
//!
//! Test data, not part of the plugin API: compiled only with the `sample` feature, which the
//! integration tests and `examples/bench.rs` get through the crate's dev-dependency on itself.

use crate::{Checkpoints, FailedEntry, ProcessedEntry, Stage, State, Status};

/// xorshift64*: small, seeded, good enough for test data and kill timing.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const AUTHORS: &[&str] = &[
    "Andy Weir",
    "Frank Herbert",
    "Ursula K. Le Guin",
    "伏瀬",
    "Brandon Sanderson",
    "Terry Pratchett",
    "Naomi Novik",
    "Stanisław Lem",
    "N. K. Jemisin",
    "Liu Cixin 刘慈欣",
];

const WORDS: &[&str] = &[
    "Project",
    "Hail",
    "Mary",
    "Dune",
    "Messiah",
    "Wizard",
    "Earthsea",
    "転生したらスライムだった件",
    "Mistborn",
    "Guards!",
    "Uprooted",
    "Solaris",
    "Fifth",
    "Season",
    "Three-Body",
    "Problem",
    "Ünïcödé",
    "“quoted”",
    "Book",
    "of",
    "the",
];

const ERRORS: &[(&str, &str)] = &[
    ("Audnex returned 404 for ASIN", "AudnexError"),
    ("Audnex 503: upstream unavailable", "NetworkError"),
    ("qBittorrent login failed: 403 Forbidden", "QbitError"),
    (
        "mkbrr exited with status 1: no audio files found",
        "TorrentError",
    ),
    (
        "staging failed: [Errno 28] No space left on device: '/srv/mam/staging'",
        "OSError",
    ),
];

/// A timestamp in 2025–2026: naive with microseconds as the Python tool wrote them, or with
/// an offset as mamfast writes them.
fn timestamp(rng: &mut Rng) -> String {
    let month = 1 + rng.below(12);
    let day = 1 + rng.below(28);
    let (h, m, s, us) = (
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1_000_000),
    );
    let year = 2025 + rng.below(2);
    let base = format!("{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{us:06}");
    if rng.percent(30) {
        format!("{base}+01:00")
    } else {
        base
    }
}

fn title(rng: &mut Rng) -> String {
    let n = 1 + rng.below(4);
    let mut words: Vec<&str> = (0..n).map(|_| *rng.pick(WORDS)).collect();
    if rng.percent(20) {
        words.push("\\ slash");
    }
    words.join(" ")
}

/// A unique ASIN-like ID for release `i` (an odd multiplier is a bijection on 32 bits).
fn asin(i: usize) -> String {
    format!("B0{:08X}", (i as u32).wrapping_mul(2_654_435_761))
}

/// A processed entry as the pipeline leaves it at `status`.
fn processed_entry(rng: &mut Rng, id: &str, status: Status) -> ProcessedEntry {
    let author = rng.pick(AUTHORS).to_string();
    let title = title(rng);
    let mut e = ProcessedEntry::default();
    e.asin = (!id.contains('/')).then(|| id.to_string());
    e.author = Some(author.clone());
    e.title = Some(title.clone());
    e.processed_at = Some(timestamp(rng));
    e.staging_dir = Some(format!("/srv/mam/staging/{author} - {title}"));
    let reached = match status {
        Status::Discovered => 0,
        Status::Staged => 1,
        Status::MetadataFetched => 2,
        Status::TorrentCreated => 3,
        _ => 4,
    };
    let mut checkpoints = Checkpoints::default();
    for (i, stage) in Stage::ALL.into_iter().enumerate() {
        if i < reached {
            checkpoints.set(stage, timestamp(rng));
        }
    }
    checkpoints.mark_all_present();
    e.checkpoints = Some(checkpoints);
    if reached >= 3 {
        e.torrent_path = Some(format!("/srv/mam/torrents/{author} - {title}.torrent"));
        e.infohash = Some(format!(
            "{:016x}{:016x}{:08x}",
            rng.next_u64(),
            rng.next_u64(),
            rng.below(1 << 32)
        ));
    }
    e.status = Some(status);
    e.mark_all_present();
    e
}

/// A failed entry, failed `retry_count` times.
pub fn failed_entry(rng: &mut Rng, id: &str) -> FailedEntry {
    let (error, kind) = *rng.pick(ERRORS);
    let author = rng.pick(AUTHORS).to_string();
    let title = title(rng);
    let mut e = FailedEntry::default();
    e.asin = (!id.contains('/')).then(|| id.to_string());
    e.author = Some(author.clone());
    e.title = Some(title.clone());
    e.error = Some(error.to_string());
    e.error_type = Some(kind.to_string());
    e.first_failed_at = Some(timestamp(rng));
    e.failed_at = Some(timestamp(rng));
    e.retry_count = Some(1 + rng.below(5));
    e.source_dir = Some(format!("/srv/audiobooks/{author}/{title}"));
    e.mark_all_present();
    e
}

/// A state of `entries` releases: about 90% processed (mostly `COMPLETE`), 10% failed, with a
/// few IDs that are source paths instead of ASINs.
pub fn realistic_state(entries: usize, seed: u64) -> State {
    let mut rng = Rng::new(seed);
    let mut state = State::default();
    for i in 0..entries {
        let id = if rng.percent(3) {
            format!("/srv/audiobooks/Unknown/Release {i}")
        } else {
            asin(i)
        };
        if rng.percent(10) {
            let entry = failed_entry(&mut rng, &id);
            state.failed.insert(id, entry);
        } else {
            let status = match rng.below(100) {
                0..=84 => Status::Complete,
                85..=91 => Status::Uploaded,
                92..=94 => Status::TorrentCreated,
                95..=96 => Status::MetadataFetched,
                97..=98 => Status::Staged,
                _ => Status::Discovered,
            };
            let entry = processed_entry(&mut rng, &id, status);
            state.processed.insert(id, entry);
        }
    }
    state
}
