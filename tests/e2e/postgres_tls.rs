//! The PostgreSQL connector's TLS (libpq's `sslmode`, `sslrootcert`, `sslcert`, `sslkey`) against
//! a real server that accepts TLS connections only, with certificates made by the test.

use crate::harness::{ids, sync};
use crate::postgres::{pg_plan, server};
use inlet_host::lake::{History, Lake, read_committed};
use inlet_host::runtime::{CallFailure, ConnectorError};
use inlet_host::sync::{SyncError, SyncReport};
use inlet_tests::pg_tls::{CERT_USER, TestPki};
use inlet_tests::postgres::{PASSWORD, PgServer};
use serde_json::{Value, json};
use std::sync::OnceLock;

/// The TLS-only server and the PKI it was made with; its certificate names `127.0.0.1` and
/// `localhost`, not `127.0.0.2` (where it listens too).
fn tls_server() -> &'static (PgServer, TestPki) {
    static SERVER: OnceLock<(PgServer, TestPki)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let pki = TestPki::generate(&["127.0.0.1", "localhost"]);
        let server = PgServer::start_tls(&pki.server_tls());
        server.sql(
            "postgres",
            "CREATE TABLE secrets (id int8 PRIMARY KEY, v text NOT NULL);
             INSERT INTO secrets SELECT i, 'v' || i FROM generate_series(1, 3) i;",
        );
        (server, pki)
    })
}

/// Only rows read over an encrypted session pass this filter.
const OVER_TLS: &str = "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())";

/// Settings reading `public.secrets` with `extra` merged in.
fn config(port: u16, extra: Value) -> Value {
    let mut config = json!({"host": "127.0.0.1", "port": port, "user": "postgres", "database": "postgres",
        "connect_timeout_seconds": 10, "tables": {"public.secrets": {"where": OVER_TLS}}});
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

async fn rows(connection: &str, config: Value) -> Vec<i64> {
    let lake = Lake::in_memory();
    let (result, _) = sync(&lake, &pg_plan(connection, config)).await;
    let report = result.unwrap_or_else(|e| panic!("{connection}: {e}"));
    assert_eq!(report.streams["public.secrets"].rows, 3, "{connection}");
    ids(&read_committed(&lake, connection, "public.secrets")
        .await
        .unwrap())
}

/// The error of a sync that must fail, and proof that it committed nothing.
async fn refused(connection: &str, config: Value) -> (String, ConnectorError) {
    let lake = Lake::in_memory();
    let result: Result<SyncReport, SyncError> = sync(&lake, &pg_plan(connection, config)).await.0;
    let (message, failure) = crate::harness::failed_call(result);
    assert_eq!(
        History::read(&lake, connection)
            .await
            .unwrap()
            .commits
            .len(),
        0,
        "{connection} committed something: {message}"
    );
    match failure {
        CallFailure::Connector(error) => (message, error),
        other => panic!("{connection}: expected a connector error, got {other:?}"),
    }
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    let (pg, pki) = tls_server();
    assert_eq!(
        rows("require", config(pg.port, json!({"sslmode": "require"}))).await,
        [1, 2, 3]
    );
    // ChaCha20-Poly1305, the cheapest cipher in WebAssembly, is what the connector gets.
    let mut chacha = config(pg.port, json!({"sslmode": "require"}));
    chacha["tables"]["public.secrets"]["where"] = json!(
        "(SELECT cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()) = 'TLS_CHACHA20_POLY1305_SHA256'"
    );
    assert_eq!(rows("require_chacha", chacha).await, [1, 2, 3]);
    // SCRAM works inside TLS too.
    let scram = json!({"sslmode": "require", "user": "scram_user", "password": PASSWORD});
    assert_eq!(
        rows("require_scram", config(pg.port, scram)).await,
        [1, 2, 3]
    );
    // With `sslrootcert`, require checks the chain as verify-ca does (as libpq).
    let wrong = json!({"sslmode": "require", "sslrootcert": pki.other_ca});
    let (message, error) = refused("require_root", config(pg.port, wrong)).await;
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains("not signed by a CA in `sslrootcert` (sslmode=require)"),
        "{message}"
    );
}

#[tokio::test]
async fn verify_ca_accepts_the_right_ca_whatever_the_name_and_refuses_another_ca() {
    let (pg, pki) = tls_server();
    let right = json!({"sslmode": "verify-ca", "sslrootcert": pki.ca});
    assert_eq!(rows("ca", config(pg.port, right.clone())).await, [1, 2, 3]);
    let mut by_other_address = config(pg.port, right);
    by_other_address["host"] = json!("127.0.0.2");
    assert_eq!(rows("ca_any_name", by_other_address).await, [1, 2, 3]);

    let wrong = json!({"sslmode": "verify-ca", "sslrootcert": pki.other_ca});
    let (message, error) = refused("wrong_ca", config(pg.port, wrong)).await;
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains(
            "the server's certificate is not signed by a CA in `sslrootcert` (sslmode=verify-ca)"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn verify_full_accepts_the_names_in_the_certificate_and_names_them_otherwise() {
    let (pg, pki) = tls_server();
    let full = json!({"sslmode": "verify-full", "sslrootcert": pki.ca});
    assert_eq!(
        rows("by_ip", config(pg.port, full.clone())).await,
        [1, 2, 3]
    );
    let mut by_name = config(pg.port, full.clone());
    by_name["host"] = json!("localhost");
    assert_eq!(rows("by_name", by_name).await, [1, 2, 3]);

    let mut elsewhere = config(pg.port, full);
    elsewhere["host"] = json!("127.0.0.2");
    let (message, error) = refused("not_named", elsewhere).await;
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains("not for `host` `127.0.0.2` (sslmode=verify-full)")
            && message.contains("`127.0.0.1`")
            && message.contains("`localhost`"),
        "{message}"
    );
}

#[tokio::test]
async fn disable_and_allow_against_a_tls_only_server() {
    let (pg, _) = tls_server();
    let (message, error) = refused("disable", config(pg.port, json!({"sslmode": "disable"}))).await;
    assert!(matches!(error, ConnectorError::Auth(_)), "{message}");
    assert!(
        message.contains("no pg_hba.conf entry") && message.contains("no encryption"),
        "{message}"
    );
    // `allow` tries plain text, is refused by pg_hba, and goes on with TLS.
    assert_eq!(
        rows("allow", config(pg.port, json!({"sslmode": "allow"}))).await,
        [1, 2, 3]
    );
}

#[tokio::test]
async fn prefer_is_the_default_and_uses_tls_when_the_server_offers_it() {
    let (tls, _) = tls_server();
    assert_eq!(
        rows("prefer_tls", config(tls.port, json!({}))).await,
        [1, 2, 3]
    );

    // The harness's server has `ssl = off`: it answers `N`, and prefer goes on in plain text.
    let plain = server();
    let db = plain.database("plain_fallback");
    plain.sql(
        &db,
        "CREATE TABLE secrets (id int8 PRIMARY KEY); INSERT INTO secrets VALUES (1), (2), (3);",
    );
    let mut settings = config(plain.port, json!({"database": db}));
    settings["tables"]["public.secrets"]["where"] = json!(format!("NOT {OVER_TLS}"));
    assert_eq!(rows("prefer_plain", settings.clone()).await, [1, 2, 3]);

    // require never falls back.
    settings["sslmode"] = json!("require");
    let (message, error) = refused("require_plain", settings).await;
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains(&format!(
            "the server at 127.0.0.1:{} does not accept TLS",
            plain.port
        )) && message.contains("never falls back to plain text"),
        "{message}"
    );
}

#[tokio::test]
async fn a_client_certificate_authenticates_and_its_absence_is_named() {
    let (pg, pki) = tls_server();
    let with_cert = json!({"sslmode": "verify-full", "sslrootcert": pki.ca, "user": CERT_USER,
        "sslcert": pki.client_cert, "sslkey": pki.client_key});
    assert_eq!(rows("cert", config(pg.port, with_cert)).await, [1, 2, 3]);

    let without = json!({"sslmode": "verify-full", "sslrootcert": pki.ca, "user": CERT_USER});
    let (message, error) = refused("no_cert", config(pg.port, without)).await;
    assert!(matches!(error, ConnectorError::Auth(_)), "{message}");
    assert!(
        message.contains("requires a valid client certificate"),
        "{message}"
    );

    let stranger = json!({"sslmode": "verify-full", "sslrootcert": pki.ca, "user": CERT_USER,
        "sslcert": pki.stranger_cert, "sslkey": pki.stranger_key});
    let (message, _) = refused("stranger_cert", config(pg.port, stranger)).await;
    assert!(
        message.contains("does not accept the client certificate in `sslcert`"),
        "{message}"
    );
    assert!(!message.contains(&pki.stranger_key[40..80]), "{message}");

    // Half a client certificate, or a path where PEM text belongs, is named before connecting.
    let half = json!({"sslmode": "require", "sslcert": pki.client_cert});
    let (message, error) = refused("half_cert", config(pg.port, half)).await;
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains("`sslcert` is set but `sslkey` is not"),
        "{message}"
    );
    let path = json!({"sslmode": "verify-ca", "sslrootcert": "server-ca.pem"});
    let (message, _) = refused("path", config(pg.port, path)).await;
    assert!(
        message.contains("`sslrootcert` holds no PEM certificate")
            && message.contains("sslrootcert = { file = \"server-ca.pem\" }"),
        "{message}"
    );
}

/// Figures, not assertions: the time of a small sync (connect, TLS handshake, catalog, COPY) and
/// the read throughput of a wider table, with and without TLS. Run with
/// `cargo test -p inlet-tests --test e2e bench_tls -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a benchmark: prints figures"]
async fn bench_tls_handshake_and_throughput() {
    let (tls, pki) = tls_server();
    let plain = server();
    let rows: i64 = std::env::var("INLET_BENCH_ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300_000);
    let table = format!(
        "CREATE TABLE wide (id int8 PRIMARY KEY, v text NOT NULL);
         INSERT INTO wide SELECT i, repeat(md5(i::text), 6) FROM generate_series(1, {rows}) i;"
    );
    let wide = "bench_wide";
    for server in [tls, plain] {
        server.sql("postgres", &format!("DROP DATABASE IF EXISTS {wide}"));
        server.sql(&server.database(wide), &table);
    }
    let db = "bench_small";
    plain.sql("postgres", &format!("DROP DATABASE IF EXISTS {db}"));
    plain.sql(
        &plain.database(db),
        "CREATE TABLE secrets (id int8 PRIMARY KEY); INSERT INTO secrets VALUES (1), (2), (3);",
    );
    let small = |port: u16, database: &str, extra: Value| {
        let mut config = config(port, extra);
        config["database"] = json!(database);
        config["tables"] = json!({"public.secrets": {}});
        config
    };
    let cases = [
        (
            "plain (disable)",
            small(plain.port, db, json!({"sslmode": "disable"})),
        ),
        (
            "prefer -> plain (N)",
            small(plain.port, db, json!({"sslmode": "prefer"})),
        ),
        (
            "require (TLS)",
            small(tls.port, "postgres", json!({"sslmode": "require"})),
        ),
        (
            "verify-full (TLS)",
            small(
                tls.port,
                "postgres",
                json!({"sslmode": "verify-full", "sslrootcert": pki.ca}),
            ),
        ),
    ];
    println!("one connection and a 3-row read (no lake), median of 15 after a warm-up:");
    for (name, config) in &cases {
        let plan = pg_plan("bench_small", config.clone());
        let mut times = Vec::new();
        for _ in 0..16 {
            let (read, seconds) = read_counting(&plan, "public.secrets").await;
            assert_eq!(read, 3);
            times.push(seconds * 1000.0);
        }
        times.remove(0);
        times.sort_by(f64::total_cmp);
        println!("  {name:<22} {:>7.1} ms", times[times.len() / 2]);
    }
    println!("small sync (3 rows, discover + read into a lake), median of 7 after a warm-up:");
    for (name, config) in cases {
        let plan = pg_plan("bench_small", config);
        let mut times = Vec::new();
        for _ in 0..8 {
            let lake = Lake::in_memory();
            let started = std::time::Instant::now();
            sync(&lake, &plan).await.0.unwrap();
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.remove(0);
        times.sort_by(f64::total_cmp);
        println!("  {name:<22} {:>7.1} ms", times[times.len() / 2]);
    }
    println!(
        "read of `wide` ({rows} rows, ~200 bytes each) into a sink that counts (no lake), best of 3:"
    );
    for (name, port, mode) in [
        ("plain (disable)", plain.port, "disable"),
        ("TLS (require)", tls.port, "require"),
    ] {
        let config = json!({"host": "127.0.0.1", "port": port, "user": "postgres", "database": wide,
            "sslmode": mode, "tables": {"public.wide": {}}});
        let plan = pg_plan("bench_wide", config);
        let mut best = f64::MAX;
        for _ in 0..3 {
            let (read, seconds) = read_counting(&plan, "public.wide").await;
            assert_eq!(read as i64, rows);
            best = best.min(seconds);
        }
        println!(
            "  {name:<22} {best:>6.2} s  {:>9.0} rows/s  {:>6.1} MB/s of COPY text",
            rows as f64 / best,
            rows as f64 * 201.0 / best / 1e6
        );
    }
}

/// Counts rows and forgets them.
struct CountingSink(u64);

impl inlet_host::runtime::BatchSink for CountingSink {
    fn emit<'a>(
        &'a mut self,
        _stream: &'a str,
        batch: arrow_array::RecordBatch,
    ) -> futures::future::BoxFuture<'a, Result<(), inlet_host::runtime::SinkError>> {
        self.0 += batch.num_rows() as u64;
        Box::pin(async { Ok(()) })
    }
    fn checkpoint(
        &mut self,
        _state: String,
    ) -> futures::future::BoxFuture<'_, Result<(), inlet_host::runtime::SinkError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Reads `stream` in full with `plan`'s connector and settings; the rows read and the seconds
/// the `read` call took (connect, handshake, catalog, COPY), instance start excluded.
async fn read_counting(plan: &inlet_host::sync::SyncPlan, stream: &str) -> (u64, f64) {
    use inlet_host::runtime::{ConfiguredStream, SyncMode};
    let connector =
        inlet_host::sync::load(crate::harness::runtime(), &plan.connection, &plan.connector)
            .unwrap();
    let prepared = inlet_host::sync::Prepared::new(
        connector,
        &plan.connection,
        &plan.config,
        &plan.sandbox,
        std::sync::Arc::new(|_| {}),
    )
    .await
    .unwrap();
    let run = prepared.start(&plan.sandbox).await.unwrap();
    let streams = [ConfiguredStream {
        name: stream.to_owned(),
        sync_mode: SyncMode::FullRefresh,
        partition: None,
    }];
    let declared = std::collections::HashMap::from([(stream.to_owned(), None)]);
    let started = std::time::Instant::now();
    let sink = run
        .read(
            &plan.config.to_string(),
            &streams,
            declared,
            None,
            Box::new(CountingSink(0)),
        )
        .await
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let sink: Box<dyn std::any::Any> = sink;
    (sink.downcast::<CountingSink>().unwrap().0, seconds)
}

#[tokio::test]
async fn a_server_without_chacha20_gets_every_cipher_suite_on_a_second_try() {
    let (_, pki) = tls_server();
    // TLS 1.2 with one AES-GCM suite: the first offer (ChaCha20 alone) fails.
    let aes_only = PgServer::start_tls(&inlet_tests::postgres::ServerTls {
        options: "-c ssl_max_protocol_version=TLSv1.2 -c ssl_ciphers=ECDHE-ECDSA-AES128-GCM-SHA256",
        ..pki.server_tls()
    });
    aes_only.sql(
        "postgres",
        "CREATE TABLE secrets (id int8 PRIMARY KEY); INSERT INTO secrets VALUES (1), (2), (3);",
    );
    let mut settings = config(
        aes_only.port,
        json!({"sslmode": "verify-full", "sslrootcert": pki.ca}),
    );
    settings["tables"]["public.secrets"]["where"] = json!(
        "(SELECT cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()) = 'ECDHE-ECDSA-AES128-GCM-SHA256'"
    );
    assert_eq!(rows("aes_only", settings).await, [1, 2, 3]);
}

#[tokio::test]
async fn a_server_that_agrees_to_tls_and_then_does_not_speak_it_is_named() {
    use std::io::{Read, Write};
    // Says `S` to the 8-byte SSLRequest, then either answers in plain text (in the same packet,
    // as in CVE-2021-23222: nothing of it may reach the protocol) or says nothing at all.
    let fake = |then: &'static [u8]| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (requests, received) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut stream in listener.incoming().flatten() {
                let mut request = [0u8; 8];
                if stream.read_exact(&mut request).is_ok() {
                    let _ = requests.send(request);
                    let _ = stream.write_all(&[b"S", then].concat());
                }
                held.push(stream);
            }
        });
        (port, received)
    };
    let settings = |port: u16| {
        json!({"host": "127.0.0.1", "port": port, "user": "postgres", "database": "postgres",
            "sslmode": "require", "connect_timeout_seconds": 2})
    };

    let (port, received) = fake(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    let (message, error) = refused("not_tls", settings(port)).await;
    assert_eq!(
        received.recv().unwrap(),
        [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f],
        "SSLRequest"
    );
    assert!(matches!(error, ConnectorError::Config(_)), "{message}");
    assert!(
        message.contains("the server agreed to TLS but then did not speak it")
            && message.contains(&format!("127.0.0.1:{port}")),
        "{message}"
    );

    // prefer tries plain text after a failed handshake, and says both what failed then and why.
    let mut prefer = settings(port);
    prefer["sslmode"] = json!("prefer");
    let (message, _) = refused("not_tls_prefer", prefer).await;
    assert!(
        message.contains("does not speak the PostgreSQL protocol")
            && message.contains(
                "after the TLS attempt failed: the server agreed to TLS but then did not speak it"
            ),
        "{message}"
    );

    let (port, _) = fake(b"");
    let (message, error) = refused("silent_tls", settings(port)).await;
    assert!(matches!(error, ConnectorError::Transient(_)), "{message}");
    assert!(
        message.contains("sent no PostgreSQL answer within 2 s"),
        "{message}"
    );
}

#[tokio::test]
async fn pem_settings_come_from_files_the_operator_names_in_inlet_toml() {
    let (pg, pki) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    for (file, pem) in [
        ("server-ca.pem", &pki.ca),
        ("client-cert.pem", &pki.client_cert),
        ("client-key.pem", &pki.client_key),
    ] {
        std::fs::write(dir.path().join(file), pem).unwrap();
    }
    let toml = format!(
        r#"[lake]
url = "lake"

[connections.app]
connector = "postgres"
config = {{ host = "localhost", port = {port}, user = "{CERT_USER}", database = "postgres",
           sslmode = "verify-full", sslrootcert = {{ file = "server-ca.pem" }},
           sslcert = {{ file = "client-cert.pem" }}, sslkey = {{ file = "client-key.pem" }},
           tables = {{ "public.secrets" = {{ where = "{OVER_TLS}" }} }} }}
[connections.app.sandbox]
allow_private_network = true
"#,
        port = pg.port
    );
    let path = dir.path().join("inlet.toml");
    std::fs::write(&path, toml).unwrap();
    let mut loaded = inlet_host::config::LoadedConfig::load(&path).unwrap();
    loaded.resolve_secrets().await.unwrap();
    let plan = loaded.plan("app").unwrap();
    let lake = Lake::in_memory();
    let report = sync(&lake, &plan).await.0.unwrap();
    assert_eq!(report.streams["public.secrets"].rows, 3);
}
