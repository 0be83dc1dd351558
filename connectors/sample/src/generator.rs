//! The deterministic model of the shop: which rows exist in a generation, and which version each is at.

use crate::SampleConfig;
use std::collections::HashMap;

/// 2026-01-01T00:00:00Z: the shop opens.
const OPENING_SECONDS: i64 = 1_767_225_600;
const DAY_SECONDS: i64 = 86_400;

/// A SplitMix64 step: a cheap, well-mixed hash of the inputs.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A value derived from the seed, a salt naming the attribute, and an id.
pub fn pick(seed: u64, salt: u64, id: u64) -> u64 {
    mix(seed ^ mix(salt ^ mix(id)))
}

/// Microseconds since the epoch of a moment on the given generation's day.
pub fn timestamp_micros(generation: u64, id: u64) -> i64 {
    (OPENING_SECONDS + generation as i64 * DAY_SECONDS + (id % DAY_SECONDS as u64) as i64)
        * 1_000_000
}

/// One entity table (patients, consultations or orders) growing and changing over generations.
pub struct Table {
    initial: u64,
    per_run: u64,
    /// id -> (generation of the last update, number of updates)
    updates: HashMap<u64, (u64, u32)>,
    generation: u64,
}

/// One row as the generation sees it.
#[derive(Debug, Clone, Copy)]
pub struct RowVersion {
    pub id: u64,
    pub created_generation: u64,
    pub updated_generation: u64,
    /// 0 for a row never updated; +1 per update.
    pub version: u32,
}

impl RowVersion {
    pub fn created_at(&self) -> i64 {
        timestamp_micros(self.created_generation, self.id)
    }
    pub fn updated_at(&self) -> i64 {
        timestamp_micros(self.updated_generation, self.id)
    }
}

impl Table {
    fn new(
        seed: u64,
        salt: u64,
        initial: u64,
        per_run: u64,
        updates_per_run: u64,
        generation: u64,
    ) -> Self {
        let mut table = Self {
            initial,
            per_run,
            updates: HashMap::new(),
            generation,
        };
        for g in 2..=generation {
            let existing = table.count_at(g - 1);
            for k in 0..updates_per_run {
                let id = 1 + pick(seed, salt ^ g.rotate_left(17), k) % existing;
                let entry = table.updates.entry(id).or_insert((g, 0));
                entry.0 = g;
                entry.1 += 1;
            }
        }
        table
    }

    /// Rows that exist in generation `g`.
    pub fn count_at(&self, g: u64) -> u64 {
        self.initial + self.per_run * g.saturating_sub(1)
    }

    /// Rows that exist in this generation.
    pub fn count(&self) -> u64 {
        self.count_at(self.generation)
    }

    /// The row `id` (1-based) as of this generation.
    pub fn row(&self, id: u64) -> RowVersion {
        let created_generation = if id <= self.initial {
            1
        } else {
            2 + (id - self.initial - 1) / self.per_run
        };
        let (updated_generation, version) = self
            .updates
            .get(&id)
            .copied()
            .unwrap_or((created_generation, 0));
        RowVersion {
            id,
            created_generation,
            updated_generation,
            version,
        }
    }
}

/// The whole shop in one generation.
pub struct Shop {
    pub seed: u64,
    pub patients: Table,
    pub consultations: Table,
    pub orders: Table,
}

impl Shop {
    pub fn new(config: &SampleConfig, generation: u64) -> Self {
        let seed = config.seed;
        let (p, n, u) = (config.patients, config.new_per_run, config.updates_per_run);
        Self {
            seed,
            patients: Table::new(seed, 1, p, n, u, generation),
            consultations: Table::new(seed, 2, 2 * p, 2 * n, u, generation),
            orders: Table::new(seed, 3, 3 * p, 3 * n, 2 * u, generation),
        }
    }
}
