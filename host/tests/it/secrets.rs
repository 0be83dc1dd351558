//! Secret references in `inlet.toml` (`{ env }`, `{ file }`, `{ secret }` against a fixture
//! Secret Manager shaped like the REST API): the values reach the connector, and nothing a run
//! writes or prints holds them: the lake (manifests, data, run records), stdout, stderr, the
//! log lines, `inlet state show`.

use super::http_fixture::{FixtureServer, Response};
use super::{inlet_with_env, text};
use base64::Engine;
use std::path::Path;

/// The test users' password (`scram_user`): the secret every source below carries.
const PASSWORD: &str = super::postgres::PASSWORD;
const SECRET_NAME: &str = "projects/inlet-test/secrets/pg-password/versions/3";

/// A fixture Secret Manager: `SECRET_NAME` holds the password (with the trailing newline
/// `echo ... | gcloud secrets create` stores); `.../damaged` answers a wrong checksum;
/// `.../forbidden` a 403; anything else 404, all in Google's error shape.
fn secret_manager() -> FixtureServer {
    FixtureServer::start(|request| {
        let path = request.path.trim_start_matches("/v1/");
        let Some(name) = path.strip_suffix(":access") else {
            return Response::json(
                404,
                serde_json::json!({"error": {"code": 404, "message": "unknown method", "status": "NOT_FOUND"}}),
            );
        };
        let payload = |data: &[u8], crc: u32| {
            Response::json(
                200,
                serde_json::json!({"name": name, "payload": {
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "dataCrc32c": crc.to_string(),
                }}),
            )
        };
        let value = format!("{PASSWORD}\n");
        match name {
            SECRET_NAME => payload(
                value.as_bytes(),
                inlet_host::secrets::crc32c(value.as_bytes()),
            ),
            "projects/inlet-test/secrets/damaged/versions/1" => payload(
                value.as_bytes(),
                inlet_host::secrets::crc32c(b"something else"),
            ),
            "projects/inlet-test/secrets/forbidden/versions/latest" => Response::json(
                403,
                serde_json::json!({"error": {"code": 403, "message": "Permission 'secretmanager.versions.access' denied for resource", "status": "PERMISSION_DENIED"}}),
            ),
            _ => Response::json(
                404,
                serde_json::json!({"error": {"code": 404, "message": format!("Secret Version [{name}] not found."), "status": "NOT_FOUND"}}),
            ),
        }
    })
}

fn pg() -> &'static super::postgres::PgServer {
    super::cli::pg()
}

fn write_config(dir: &Path, manager: &FixtureServer, password_sources: &[(&str, &str)]) {
    let pg = pg();
    let mut toml = format!(
        "[lake]\nurl = \"lake\"\n\n[google]\ncredentials = \"none\"\nsecret_manager_endpoint = \"{}\"\n",
        manager.url
    );
    for (connection, source) in password_sources {
        toml.push_str(&format!(
            r#"
[connections.{connection}]
connector = "postgres"
config = {{ host = "127.0.0.1", port = {port}, user = "scram_user", database = "secrets", password = {source} }}
[connections.{connection}.sandbox]
allow_private_network = true
"#,
            port = pg.port
        ));
    }
    std::fs::write(dir.join("inlet.toml"), toml).unwrap();
}

/// Every byte under `dir`, as text where it is text.
fn everything_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn secrets_from_env_file_and_secret_manager_reach_the_source_and_nothing_written_holds_them() {
    let pg = pg();
    pg.database("secrets");
    {
        pg.sql(
            "secrets",
            "CREATE TABLE accounts (id bigint PRIMARY KEY, name text); \
             INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 50) g",
        );
    }
    let manager = secret_manager();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pg.password"), format!("{PASSWORD}\n")).unwrap();
    write_config(
        dir.path(),
        &manager,
        &[
            ("from_env", "{ env = \"INLET_TEST_PG_PASSWORD\" }"),
            ("from_file", "{ file = \"pg.password\" }"),
            ("from_manager", &format!("{{ secret = \"{SECRET_NAME}\" }}")),
        ],
    );
    let env = [("INLET_TEST_PG_PASSWORD", PASSWORD)];
    let mut printed = Vec::new();
    for args in [
        &["-v", "run", "inlet.toml"][..],
        &["--log-format", "json", "-v", "run", "inlet.toml"][..],
    ] {
        let run = inlet_with_env(dir.path(), args, &env);
        assert!(run.status.success(), "{}", text(&run));
        printed.push(run.stdout);
        printed.push(run.stderr);
    }
    for connection in ["from_env", "from_file", "from_manager"] {
        let show = inlet_with_env(dir.path(), &["state", "show", connection], &env);
        assert!(show.status.success(), "{}", text(&show));
        let state: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
        assert!(state["sequence"].as_u64().unwrap() >= 1, "{state}");
        printed.push(show.stdout);
        let lake =
            inlet_host::lake::Lake::open(&dir.path().join("lake").display().to_string()).unwrap();
        let rows = tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(inlet_host::lake::read_committed(
                &lake,
                connection,
                "public.accounts",
            ))
            .unwrap();
        // Each run read the table in full (it has no cursor): 50 distinct accounts.
        let mut ids: Vec<i64> = rows
            .iter()
            .flat_map(|b| {
                let column = b.column_by_name("id").unwrap();
                column
                    .as_any()
                    .downcast_ref::<arrow_array::Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids, (1..=50).collect::<Vec<_>>(), "{connection}");
    }
    // The one request Secret Manager saw named the version; the value went nowhere else.
    let requests = manager.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.path == format!("/v1/{SECRET_NAME}:access")),
        "{requests:?}"
    );
    for output in &printed {
        assert!(
            !contains(output, PASSWORD),
            "{}",
            String::from_utf8_lossy(output)
        );
    }
    for (path, bytes) in everything_under(&dir.path().join("lake")) {
        assert!(!contains(&bytes, PASSWORD), "{path} holds the password");
    }
}

#[test]
fn a_secret_that_cannot_be_read_stops_the_run_naming_the_key_and_the_source() {
    let manager = secret_manager();
    let dir = tempfile::tempdir().unwrap();
    for (source, expected) in [
        (
            "{ env = \"INLET_TEST_UNSET_VARIABLE\" }",
            "`connections.pg.config.password`: the environment variable `INLET_TEST_UNSET_VARIABLE` is not usable",
        ),
        (
            "{ file = \"missing.password\" }",
            "`connections.pg.config.password`: cannot read the secret file",
        ),
        (
            "{ secret = \"projects/inlet-test/secrets/absent/versions/1\" }",
            "Secret Version [projects/inlet-test/secrets/absent/versions/1] not found.",
        ),
        (
            "{ secret = \"projects/inlet-test/secrets/forbidden\" }",
            "roles/secretmanager.secretAccessor",
        ),
        (
            "{ secret = \"projects/inlet-test/secrets/damaged/versions/1\" }",
            "does not match its checksum",
        ),
        (
            "{ secret = \"pg-password\" }",
            "write `projects/<project>/secrets/<secret>/versions/<version or latest>`",
        ),
    ] {
        write_config(dir.path(), &manager, &[("pg", source)]);
        let run = inlet_with_env(dir.path(), &["run", "inlet.toml"], &[]);
        assert_eq!(run.status.code(), Some(1), "{}", text(&run));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains(expected), "{source}: {stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
        assert!(
            !dir.path().join("lake/pg").exists(),
            "nothing was committed"
        );
    }
    // Commands that only read the lake do not need the sources' secrets.
    write_config(
        dir.path(),
        &manager,
        &[("pg", "{ env = \"INLET_TEST_UNSET_VARIABLE\" }")],
    );
    let status = inlet_with_env(dir.path(), &["status", "inlet.toml"], &[]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
}

#[test]
fn a_secret_a_source_echoes_back_is_redacted_from_the_error() {
    // The host name is the secret here: the connector's error names the host it could not
    // resolve, and the CLI must print `***` in its place.
    let manager = secret_manager();
    let dir = tempfile::tempdir().unwrap();
    let hidden = "db-hidden-7f3a9c.invalid";
    std::fs::write(
        dir.path().join("inlet.toml"),
        format!(
            "[lake]\nurl = \"lake\"\n[google]\ncredentials = \"none\"\nsecret_manager_endpoint = \"{}\"\n\
             [connections.pg]\nconnector = \"postgres\"\nconfig = {{ host = {{ env = \"INLET_TEST_PG_HOST\" }}, user = \"u\", database = \"d\" }}\n",
            manager.url
        ),
    )
    .unwrap();
    let run = inlet_with_env(
        dir.path(),
        &["run", "inlet.toml"],
        &[("INLET_TEST_PG_HOST", hidden)],
    );
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains(hidden), "{stderr}");
    assert!(stderr.contains("***"), "{stderr}");
}
