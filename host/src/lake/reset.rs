//! Starting over: a commit that clears a connection's connector state, or only the part of it
//! that belongs to some streams, which the next run then reads in full as one copy (so a loader
//! replaces their tables and leaves the others alone).
//!
//! Which state belongs to a stream is the SDK's convention: a stream keeps its cursor under its
//! own name or under keys that start with `<stream>.`; a key matching two streams (`public` and
//! `public.orders`) belongs to the longer name.

use super::Lake;
use super::commit::{self, CommitError};
use super::history::Tip;

/// Why streams could not be reset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResetError {
    #[error("connection `{connection}` has no commits; nothing to reset")]
    NoCommits { connection: String },
    #[error("connection `{connection}` has no stream `{stream}` (streams: {known})")]
    UnknownStream {
        connection: String,
        stream: String,
        known: String,
    },
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// What a stream reset wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamReset {
    /// The commit that records it.
    pub sequence: u64,
    /// The state keys removed (the streams' cursors).
    pub removed_keys: Vec<String>,
}

/// The stream among `streams` that state key `key` belongs to, if any.
pub fn stream_of_key<'a>(key: &str, streams: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    streams
        .into_iter()
        .filter(|stream| {
            key == *stream
                || key
                    .strip_prefix(*stream)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|stream| stream.len())
}

/// Removes from `state` (a JSON object) the keys that belong to one of `rereading`, judged
/// among all `streams`; answers the keys removed.
pub fn remove_stream_keys<'a>(
    state: &mut serde_json::Value,
    rereading: &[&str],
    streams: impl IntoIterator<Item = &'a str> + Clone,
) -> Vec<String> {
    let Some(object) = state.as_object_mut() else {
        return Vec::new();
    };
    let removed: Vec<String> = object
        .keys()
        .filter(|key| {
            stream_of_key(key, streams.clone()).is_some_and(|owner| rereading.contains(&owner))
        })
        .cloned()
        .collect();
    for key in &removed {
        object.remove(key);
    }
    removed
}

/// Writes a commit that clears the connector state of `connection` (schemas and files stay), so
/// the next run starts from scratch.
pub async fn reset_state(lake: &Lake, connection: &str) -> Result<Option<u64>, CommitError> {
    let Some(tip) = Tip::open(lake, connection).await? else {
        return Ok(None);
    };
    let mut commit = tip.commit;
    commit.format = commit::FORMAT;
    commit.sequence += 1;
    commit.run_id = "state-reset".into();
    commit.committed_at = chrono::Utc::now().to_rfc3339();
    commit.state = None;
    commit::write_commit(lake, connection, &commit, None).await?;
    Ok(Some(commit.sequence))
}

/// Writes a commit that removes the state of `streams` and marks them to be read again in
/// full by the next run (`reread`); the other streams' state stays.
pub async fn reset_streams(
    lake: &Lake,
    connection: &str,
    streams: &[String],
) -> Result<StreamReset, ResetError> {
    let Some(tip) = Tip::open(lake, connection).await? else {
        return Err(ResetError::NoCommits {
            connection: connection.to_owned(),
        });
    };
    let mut commit = tip.commit;
    for stream in streams {
        if !commit.streams.contains_key(stream) {
            return Err(ResetError::UnknownStream {
                connection: connection.to_owned(),
                stream: stream.clone(),
                known: commit
                    .streams
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let previous_state = commit.state.clone();
    let names: Vec<String> = commit.streams.keys().cloned().collect();
    let rereading: Vec<&str> = streams.iter().map(String::as_str).collect();
    let removed_keys = match &mut commit.state {
        Some(state) => remove_stream_keys(state, &rereading, names.iter().map(String::as_str)),
        None => Vec::new(),
    };
    for stream in streams {
        if let Some(entry) = commit.streams.get_mut(stream) {
            entry.reread = true;
        }
    }
    commit.format = commit::FORMAT;
    commit.sequence += 1;
    commit.run_id = "stream-reset".into();
    commit.committed_at = chrono::Utc::now().to_rfc3339();
    commit::write_commit(lake, connection, &commit, previous_state.as_ref()).await?;
    Ok(StreamReset {
        sequence: commit.sequence,
        removed_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_belongs_to_the_longest_stream_it_names() {
        let streams = ["public", "public.orders", "orders"];
        let owner = |key| stream_of_key(key, streams);
        assert_eq!(owner("public.orders.cursor"), Some("public.orders"));
        assert_eq!(owner("public.orders"), Some("public.orders"));
        assert_eq!(owner("public.cursor"), Some("public"));
        assert_eq!(owner("orders"), Some("orders"));
        assert_eq!(owner("orders_archive.cursor"), None);
        assert_eq!(owner("global"), None);
    }

    #[test]
    fn only_the_reset_streams_keys_go() {
        let mut state = serde_json::json!({
            "public.cursor": 1, "public.orders.cursor": 2, "public.orders.cursor_column": "id",
            "orders": [1], "version": 3,
        });
        let removed = remove_stream_keys(
            &mut state,
            &["public.orders"],
            ["public", "public.orders", "orders"],
        );
        assert_eq!(
            removed,
            ["public.orders.cursor", "public.orders.cursor_column"]
        );
        assert_eq!(
            state,
            serde_json::json!({"public.cursor": 1, "orders": [1], "version": 3})
        );
    }
}
