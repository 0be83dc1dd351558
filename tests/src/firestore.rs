//! Google's Firestore emulator (the jar shipped with the Cloud SDK), started once per test
//! process on a free port, stopped with the process; and a helper to write documents into it.

use crate::gcp::{free_port, http, supervise, wait_ready};
use serde_json::Value;
use std::path::Path;
use std::process::Child;
use std::sync::OnceLock;

/// Where the Cloud SDK puts the emulator.
pub const JAR: &str =
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar";
/// The project the emulator serves.
pub const PROJECT: &str = "test";

/// The running emulator.
pub struct FirestoreEmulator {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The port.
    pub port: u16,
    _logs: tempfile::TempDir,
    _server: Child,
}

impl FirestoreEmulator {
    /// The emulator of this test process, started on first use.
    pub fn get() -> &'static FirestoreEmulator {
        static EMULATOR: OnceLock<FirestoreEmulator> = OnceLock::new();
        EMULATOR.get_or_init(Self::start)
    }

    fn start() -> Self {
        assert!(
            Path::new(JAR).is_file(),
            "the Firestore emulator is missing ({JAR}); it ships with the Google Cloud SDK (component cloud-firestore-emulator)"
        );
        let logs = tempfile::Builder::new()
            .prefix("inlet-firestore-")
            .tempdir()
            .unwrap();
        let log = logs.path().join("emulator.log");
        let port = free_port();
        let server = supervise(
            &format!(
                "java -cp {JAR} com.google.cloud.datastore.emulator.firestore.CloudFirestore start --host=127.0.0.1 --port={port} --project_id={PROJECT}"
            ),
            &log,
        );
        wait_ready("the Firestore emulator", port, "/", &log);
        Self {
            url: format!("http://127.0.0.1:{port}"),
            port,
            _logs: logs,
            _server: server,
        }
    }

    /// Writes document `path` (`users/alice`) with `fields` in Firestore's typed JSON
    /// (`{"age": {"integerValue": "7"}}`), replacing it if it exists.
    pub fn put(&self, path: &str, fields: Value) {
        let body = serde_json::json!({ "fields": fields });
        let (status, answer) = http(
            "PATCH",
            self.port,
            &format!("/v1/projects/{PROJECT}/databases/(default)/documents/{path}"),
            Some(&body.to_string()),
        )
        .unwrap();
        assert_eq!(status, 200, "writing {path}: {answer}");
    }
}
