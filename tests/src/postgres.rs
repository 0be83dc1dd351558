//! A real PostgreSQL server for tests: `initdb` into a temporary folder, started on a free port of
//! 127.0.0.1, stopped when the test process exits. Users for each password method exist:
//! `md5_user`, `scram_user`, `clear_user` (password `s3cret-pw`), and `postgres` (trust).
//! `PgServer::start_tls` starts one that accepts TLS connections only (`hostssl` lines), on
//! 127.0.0.1 and 127.0.0.2, with a `cert_user` that must show a client certificate.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The password of the test users.
pub const PASSWORD: &str = "s3cret-pw";

/// The user the TLS server's `pg_hba.conf` lets in only with a client certificate (`cert`
/// method: the certificate's common name is the user name).
pub const CERT_USER: &str = "cert_user";

/// What a TLS server needs, as PEM: its certificate and key, and the CA it trusts for client
/// certificates.
pub struct ServerTls<'a> {
    pub cert: &'a str,
    pub key: &'a str,
    pub client_ca: &'a str,
    /// More server options (`-c name=value ...`), e.g. to restrict protocol versions or ciphers.
    pub options: &'a str,
}

/// A running server.
pub struct PgServer {
    /// Holds the data folder for as long as the server lives.
    _dir: tempfile::TempDir,
    /// The shell that runs the server and stops it when the test process is gone.
    _watchdog: std::process::Child,
    socket_dir: PathBuf,
    bin: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

fn find_bin() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    candidates.sort();
    candidates.pop().unwrap_or_else(|| {
        panic!("PostgreSQL server binaries (initdb, postgres) were not found under /usr/lib/postgresql: run tests/run.sh, which installs them with apt-get")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A command run as the `postgres` user when the tests run as root (the server refuses root).
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgServer {
    /// Creates a cluster and starts it (plain TCP only, `ssl = off`).
    pub fn start() -> Self {
        Self::start_with(None, false)
    }

    /// Creates a cluster with `wal_level = logical` and room for replication slots and WAL
    /// senders (change data capture), and starts it.
    pub fn start_logical() -> Self {
        Self::start_with(None, true)
    }

    /// Creates a cluster that speaks TLS only, with `tls`'s certificate, and starts it.
    pub fn start_tls(tls: &ServerTls<'_>) -> Self {
        Self::start_with(Some(tls), false)
    }

    fn start_with(tls: Option<&ServerTls<'_>>, logical: bool) -> Self {
        let bin = find_bin();
        let dir = tempfile::Builder::new()
            .prefix("inlet-pg-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let socket_dir = dir.path().to_path_buf();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the test cluster folder");
        }
        let output = as_server_user(&bin.join("initdb"))
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let hba = match tls {
            None => "local all all trust\n\
                     host all md5_user 127.0.0.1/32 md5\n\
                     host all scram_user 127.0.0.1/32 scram-sha-256\n\
                     host all clear_user 127.0.0.1/32 password\n\
                     host all all 127.0.0.1/32 trust\n"
                .to_owned(),
            Some(_) => format!(
                "local all all trust\n\
                 hostssl all {user} 127.0.0.0/8 cert\n\
                 hostssl all scram_user 127.0.0.0/8 scram-sha-256\n\
                 hostssl all all 127.0.0.0/8 trust\n",
                user = CERT_USER
            ),
        };
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let mut options = "-c listen_addresses=127.0.0.1".to_owned();
        if let Some(tls) = tls {
            for (file, pem) in [
                ("server.crt", tls.cert),
                ("server.key", tls.key),
                ("root.crt", tls.client_ca),
            ] {
                let path = data.join(file);
                std::fs::write(&path, pem).unwrap();
                std::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .unwrap();
            }
            if is_root() {
                let status = Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .status()
                    .unwrap();
                assert!(status.success(), "chown of the certificates");
            }
            // 127.0.0.2 is not among the certificate's names: connecting there tests verify-full.
            options = format!(
                "-c listen_addresses=127.0.0.1,127.0.0.2 -c ssl=on -c ssl_cert_file={data}/server.crt \
                 -c ssl_key_file={data}/server.key -c ssl_ca_file={data}/root.crt {extra}",
                data = data.display(),
                extra = tls.options
            );
        }
        if logical {
            options.push_str(
                " -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20",
            );
        }
        let port = free_port();
        // A watchdog stops the server when the test process is gone, however it ends, and removes its
        // folder (the server lives in a static, whose TempDir is never dropped).
        let script = format!(
            "{postgres} -D {data} -p {port} -k {socket} {options} -c fsync=off -c full_page_writes=off \
             -c synchronous_commit=off >{log} 2>&1 & pg=$!; \
             while [ -d /proc/{parent} ] && kill -0 $pg 2>/dev/null; do sleep 0.5; done; kill -INT $pg 2>/dev/null; wait $pg; \
             [ -d /proc/{parent} ] || rm -rf {dir}",
            postgres = bin.join("postgres").display(),
            data = data.display(),
            socket = socket_dir.display(),
            log = dir.path().join("server.log").display(),
            parent = std::process::id(),
            dir = dir.path().display(),
        );
        let watchdog = as_server_user(Path::new("/bin/sh"))
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Self {
            _dir: dir,
            _watchdog: watchdog,
            socket_dir,
            bin,
            port,
        };
        let started = Instant::now();
        while server.try_sql("postgres", "SELECT 1").is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "PostgreSQL did not start: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server.sql(
            "postgres",
            &format!(
                "SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN SUPERUSER PASSWORD '{PASSWORD}'; \
                 SET password_encryption = 'scram-sha-256'; CREATE ROLE scram_user LOGIN SUPERUSER PASSWORD '{PASSWORD}'; \
                 CREATE ROLE clear_user LOGIN SUPERUSER PASSWORD '{PASSWORD}'; \
                 CREATE ROLE {cert_user} LOGIN SUPERUSER;",
                cert_user = CERT_USER
            ),
        );
        server
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default()
    }

    fn try_sql(&self, database: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Runs SQL as the superuser; panics on error.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        self.try_sql(database, sql)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n{sql}"))
    }

    /// Creates an empty database and returns its name.
    pub fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        name.to_owned()
    }

    /// Connector settings for `database` as the trusted superuser.
    pub fn config(&self, database: &str) -> serde_json::Value {
        serde_json::json!({"host": "127.0.0.1", "port": self.port, "user": "postgres", "database": database})
    }
}
