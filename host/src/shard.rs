//! Sharding `inlet run` across the tasks of an engine that already runs many copies of a job
//! (Cloud Run Jobs, Kubernetes indexed Jobs) instead of a cluster of our own: each connection
//! belongs to one shard by a stable hash of its name, so N tasks together run every connection
//! once. A connection that moves between shards (N changed) is safe: commits are create-only, so
//! two runners of one connection never both commit the same sequence.

use sha2::{Digest, Sha256};

/// Shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// From 0.
    pub index: u32,
    /// At least 1.
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not `INDEX/COUNT` (for example `0/4`)"))?;
        let number = |part: &str, what: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{text}`: the {what} `{part}` is not a whole number"))
        };
        Self::new(number(index, "index")?, number(count, "count")?)
            .map_err(|e| format!("`{text}`: {e}"))
    }

    fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 {
            return Err("the count must be at least 1".into());
        }
        if index >= count {
            return Err(format!(
                "the index must be below the count (0 to {})",
                count - 1
            ));
        }
        Ok(Self { index, count })
    }

    /// The shard the engine gave this task, from its environment: Cloud Run Jobs'
    /// `CLOUD_RUN_TASK_INDEX` and `CLOUD_RUN_TASK_COUNT`, or a Kubernetes indexed Job's
    /// `JOB_COMPLETION_INDEX` with `INLET_SHARD_COUNT` (Kubernetes does not tell the count:
    /// set it to the Job's `completions`). `None` outside such a task.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let number = |name: &str| -> Result<Option<u32>, String> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("`{name}` is `{v}`, not a whole number"))
                })
                .transpose()
        };
        let (index, count) = match (number("CLOUD_RUN_TASK_INDEX")?, number("JOB_COMPLETION_INDEX")?) {
            (Some(index), _) => (index, number("CLOUD_RUN_TASK_COUNT")?.ok_or(
                "`CLOUD_RUN_TASK_INDEX` is set but `CLOUD_RUN_TASK_COUNT` is not",
            )?),
            (None, Some(index)) => (index, number("INLET_SHARD_COUNT")?.ok_or(
                "`JOB_COMPLETION_INDEX` is set (a Kubernetes indexed Job) but `INLET_SHARD_COUNT` is not: set it to the Job's `completions`, or pass `--shard INDEX/COUNT`",
            )?),
            (None, None) => return Ok(None),
        };
        Self::new(index, count).map(Some)
    }

    /// Whether `connection` is this shard's: the first 8 bytes of SHA-256 of its name, modulo
    /// the count (the same on every machine and every version).
    pub fn owns(&self, connection: &str) -> bool {
        let digest = Sha256::digest(connection.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(head) % u64::from(self.count) == u64::from(self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_has_exactly_one_shard_and_the_split_is_even_enough() {
        for count in 1..=7u32 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            let mut per_shard = vec![0u32; count as usize];
            for n in 0..700 {
                let name = format!("connection_{n}");
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(&name)).collect();
                assert_eq!(owners.len(), 1, "{name} in {count} shards");
                per_shard[owners[0].index as usize] += 1;
            }
            let fair = 700 / count;
            assert!(
                per_shard.iter().all(|n| *n > fair / 2),
                "{count} shards: {per_shard:?}"
            );
        }
        // Stable: the hash is part of the contract (a changed hash moves connections).
        assert!(
            Shard::new(1, 2).unwrap().owns("pharmacy")
                != Shard::new(0, 2).unwrap().owns("pharmacy")
        );
    }

    #[test]
    fn shards_come_from_the_flag_or_the_engine() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1/0", "x/2", "1", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        assert_eq!(
            Shard::from_env(env(&[
                ("CLOUD_RUN_TASK_INDEX", "1"),
                ("CLOUD_RUN_TASK_COUNT", "3")
            ]))
            .unwrap(),
            Some(Shard { index: 1, count: 3 })
        );
        assert_eq!(
            Shard::from_env(env(&[
                ("JOB_COMPLETION_INDEX", "0"),
                ("INLET_SHARD_COUNT", "2")
            ]))
            .unwrap(),
            Some(Shard { index: 0, count: 2 })
        );
        let missing = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0")])).unwrap_err();
        assert!(missing.contains("INLET_SHARD_COUNT"), "{missing}");
        assert!(
            Shard::from_env(env(&[
                ("CLOUD_RUN_TASK_INDEX", "3"),
                ("CLOUD_RUN_TASK_COUNT", "3")
            ]))
            .is_err()
        );
    }
}
