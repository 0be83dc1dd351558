//! Names are pinned to the addresses that were checked: an HTTP request resolves its host again
//! and is refused when the name now answers a forbidden address (DNS rebinding), and a TCP
//! connector may look up only its declared names, which answer what was checked at start.

use crate::harness::{failed_call, plan, pong_server, sync};
use futures::future::BoxFuture;
use inlet_host::lake::Lake;
use inlet_host::runtime::{CallFailure, ConnectorError, Resolve, Violation};
use inlet_tests::guests::{HTTP_PROBE, NET_PROBE};
use inlet_tests::http_fixture::{FixtureServer, Response};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// A resolver whose answers follow a script: the first `first_count` lookups answer `first`,
/// every later one `then`. Lookups are recorded.
#[derive(Debug)]
struct Rebinding {
    first: IpAddr,
    first_count: usize,
    then: IpAddr,
    asked: Mutex<Vec<String>>,
}

impl Rebinding {
    fn new(first: &str, first_count: usize, then: &str) -> Arc<Self> {
        Arc::new(Self {
            first: first.parse().unwrap(),
            first_count,
            then: then.parse().unwrap(),
            asked: Mutex::new(Vec::new()),
        })
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Resolve for Rebinding {
    fn resolve<'a>(
        &'a self,
        name: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        let mut asked = self.asked.lock().unwrap();
        asked.push(name.to_owned());
        let ip = match asked.len() <= self.first_count {
            true => self.first,
            false => self.then,
        };
        Box::pin(async move { Ok(vec![SocketAddr::new(ip, port)]) })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_request_to_a_name_that_rebinds_to_metadata_is_refused() {
    let server = FixtureServer::start(|_| Response::json(200, json!({"ok": true})));
    let endpoint = format!("http://rebind.test:{}", server.port);

    // A name that keeps answering the fixture: the request goes to the checked address.
    let mut steady = plan(HTTP_PROBE, "probe", json!({ "endpoint": endpoint }));
    steady.sandbox.allow_private_network = true;
    let resolver = Rebinding::new("127.0.0.1", usize::MAX, "127.0.0.1");
    steady.sandbox.resolver = Some(resolver.clone());
    sync(&Lake::in_memory(), &steady).await.0.unwrap();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        resolver.asked(),
        ["rebind.test", "rebind.test"],
        "once for the grant, once for the request"
    );
    assert_eq!(
        server.requests()[0].header("host"),
        Some(format!("rebind.test:{}", server.port).as_str())
    );

    // The name answers the fixture when the run starts, the metadata server when the request is
    // sent: the grant succeeds, the request is refused, nothing is sent.
    let mut rebinding = steady.clone();
    let resolver = Rebinding::new("127.0.0.1", 1, "169.254.169.254");
    rebinding.sandbox.resolver = Some(resolver.clone());
    let result = sync(&Lake::in_memory(), &rebinding).await.0;
    match failed_call(result).1 {
        CallFailure::Violation(violation @ Violation::Address { .. }) => {
            let message = violation.to_string();
            assert!(
                message.contains("`rebind.test` resolved to 169.254.169.254")
                    && message.contains("link-local 169.254.0.0/16 is never allowed")
                    && message.contains("/probe"),
                "{message}"
            );
        }
        other => panic!("expected an address violation, got {other}"),
    }
    assert_eq!(
        resolver.asked().len(),
        2,
        "the request resolved the name again"
    );
    assert_eq!(
        server.requests().len(),
        1,
        "nothing more reached the fixture"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_names_answer_the_addresses_checked_at_start() {
    let port = pong_server();
    let mut plan = plan(NET_PROBE, "probe", json!({"host": "db.test", "port": port}));
    plan.sandbox.allow_private_network = true;
    // Were the guest's lookup to reach the resolver again, it would get the metadata address.
    let resolver = Rebinding::new("127.0.0.1", 1, "169.254.169.254");
    plan.sandbox.resolver = Some(resolver.clone());
    let (result, _) = sync(&Lake::in_memory(), &plan).await;
    let report = result.expect("the declared name answers its checked address");
    assert_eq!(report.streams["replies"].rows, 1);
    assert_eq!(
        resolver.asked(),
        ["db.test"],
        "only the grant asked the resolver"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lookup_of_an_undeclared_name_is_refused() {
    let port = pong_server();
    let mut plan = plan(
        NET_PROBE,
        "probe",
        json!({"host": "db.test", "port": port, "lookup": "c2VjcmV0.exfil.test"}),
    );
    plan.sandbox.allow_private_network = true;
    let resolver = Rebinding::new("127.0.0.1", usize::MAX, "127.0.0.1");
    plan.sandbox.resolver = Some(resolver.clone());
    let (result, _) = sync(&Lake::in_memory(), &plan).await;
    match failed_call(result).1 {
        CallFailure::Violation(violation @ Violation::NameLookup { .. }) => {
            let message = violation.to_string();
            assert!(
                message.contains("name lookup of `c2VjcmV0.exfil.test` refused")
                    && message.contains("declared destinations (db.test)"),
                "{message}"
            );
        }
        other => panic!("expected a name-lookup violation, got {other}"),
    }
    assert_eq!(
        resolver.asked(),
        ["db.test"],
        "the undeclared name was never resolved"
    );

    // The declared name is answered, with the checked address.
    plan.config["lookup"] = json!("db.test");
    let (result, _) = sync(&Lake::in_memory(), &plan).await;
    match failed_call(result).1 {
        CallFailure::Connector(ConnectorError::Data(message)) => {
            assert!(message.contains(r#"Ok(["127.0.0.1"])"#), "{message}");
        }
        other => panic!("expected the probe's answer, got {other}"),
    }
}
