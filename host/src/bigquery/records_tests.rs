//! The load-record protocol on an in-memory store: plan races, done records, format-1 records.

use super::*;

fn plan(first: u64, last: u64) -> Plan {
    Plan {
        format: FORMAT,
        first_sequence: first,
        last_sequence: last,
        nonce: format!("{first}{last}"),
        planned_at: String::new(),
        streams: Vec::new(),
    }
}

fn done(first: u64, last: u64) -> Done {
    Done {
        format: FORMAT,
        first_sequence: first,
        last_sequence: last,
        finished_at: String::new(),
        streams: Vec::new(),
    }
}

#[tokio::test]
async fn overlapping_plans_collide_and_the_loser_finds_the_winner() {
    let lake = Lake::in_memory();
    let records = Records::new(&lake, "c", "p", "d");
    // Loader A planned commits 1..=5; a commit landed; loader B planned 1..=6.
    assert!(records.create_plan(&plan(1, 5)).await.unwrap());
    assert!(!records.create_plan(&plan(1, 6)).await.unwrap(), "B loses");
    let state = records.read("d").await.unwrap();
    let (key, pending) = state.pending.unwrap();
    assert_eq!((key, pending.last_sequence), (1, 5), "B resumes A's plan");

    records.write_done(&done(1, 5)).await.unwrap();
    records.write_done(&done(1, 5)).await.unwrap();
    let state = records.read("d").await.unwrap();
    assert_eq!(state.loaded_through, 5);
    assert!(state.pending.is_none());
    assert!(records.create_plan(&plan(6, 6)).await.unwrap());
}

#[tokio::test]
async fn format_1_records_are_read_and_a_pending_plan_keeps_its_job_ids() {
    let lake = Lake::in_memory();
    let dir = lake
        .connection_root("c")
        .join(crate::lake::LOADS)
        .join("p.d");
    let put = |name: &str, body: serde_json::Value| {
        let path = dir.clone().join(name);
        let store = lake.store().clone();
        async move {
            store
                .put(&path, PutPayload::from(body.to_string().into_bytes()))
                .await
                .unwrap();
        }
    };
    put("00000000000000000003.plan.json", serde_json::json!({})).await;
    put("00000000000000000003.done.json", serde_json::json!({})).await;
    let stream = serde_json::json!({"stream": "s", "table": "t", "mode": "merge", "schema": [],
        "primary_key": ["id"], "cursor_field": null, "deleted_flag": null, "partition": null,
        "cluster_by": [], "batches": [["gs://b/1.parquet"]], "rows": 1});
    put(
        "00000000000000000007.plan.json",
        serde_json::json!({"format": 1, "first_sequence": 4, "last_sequence": 7,
            "nonce": "abc", "planned_at": "", "streams": [stream]}),
    )
    .await;
    put(
        "00000000000000000007.attempt.inlet_d_t_4_7_abc_0_merge.2.json",
        serde_json::json!({}),
    )
    .await;
    let records = Records::new(&lake, "c", "p", "d");
    let state = records.read("d").await.unwrap();
    assert_eq!(state.loaded_through, 3);
    let (key, plan) = state.pending.unwrap();
    assert_eq!(key, 7);
    let ids: Vec<&str> = plan.streams[0].jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(
        ids,
        ["inlet_d_t_4_7_abc_0_stage", "inlet_d_t_4_7_abc_0_merge"]
    );
    assert_eq!(state.attempts["inlet_d_t_4_7_abc_0_merge"], 2);

    // Finishing it writes a format-2 done record; the next plan starts at 8.
    records.write_done(&done(4, 7)).await.unwrap();
    let state = records.read("d").await.unwrap();
    assert_eq!((state.loaded_through, state.pending.is_none()), (7, true));
}

#[tokio::test]
async fn the_last_load_is_the_done_record_of_the_newest_commit() {
    let lake = Lake::in_memory();
    assert_eq!(last_load(&lake, "c").await.unwrap(), None);
    let records = Records::new(&lake, "c", "p", "d");
    records.write_done(&done(1, 5)).await.unwrap();
    let mut newest = done(6, 9);
    newest.streams.push(StreamLoaded {
        stream: "orders".into(),
        table: "p.d.orders".into(),
        mode: WriteMode::Append,
        rows: 3,
        files: 1,
        jobs: vec!["job_1".into()],
    });
    records.write_done(&newest).await.unwrap();
    records.create_plan(&plan(10, 12)).await.unwrap();
    let last = last_load(&lake, "c").await.unwrap().unwrap();
    assert_eq!((last.first_sequence, last.last_sequence), (6, 9));
    assert_eq!(last.destination, "p.d");
    assert_eq!(last.jobs["orders"], ["job_1"]);
}
