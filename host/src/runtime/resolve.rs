//! Name resolution for the network policy, behind a trait: the grant at start and the HTTP sender
//! on every request ask the same resolver, and a test can hand in one whose answers change from
//! one lookup to the next (DNS rebinding) without running a DNS server.

use futures::future::BoxFuture;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Turns a host name into addresses.
pub trait Resolve: Send + Sync + std::fmt::Debug {
    /// The addresses of `name` (a host name, never an address literal), each with `port`.
    fn resolve<'a>(
        &'a self,
        name: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        name: &'a str,
        port: u16,
    ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((name, port)).await?.collect()) })
    }
}

/// `resolver`, or the system's when there is none.
pub fn or_system(resolver: Option<&Arc<dyn Resolve>>) -> Arc<dyn Resolve> {
    resolver
        .cloned()
        .unwrap_or_else(|| Arc::new(SystemResolver))
}

/// The addresses of `host` (a name, or an address literal, IPv6 with or without brackets) with
/// `port`: a literal is its own answer, a name is asked of `resolver`. An answer with no address
/// is an error, so callers never connect to nothing.
pub async fn lookup(
    resolver: &dyn Resolve,
    host: &str,
    port: u16,
) -> std::io::Result<Vec<SocketAddr>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addresses = resolver.resolve(host, port).await?;
    if addresses.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("`{host}` resolved to no address"),
        ));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Nowhere;

    impl Resolve for Nowhere {
        fn resolve<'a>(
            &'a self,
            _: &'a str,
            _: u16,
        ) -> BoxFuture<'a, std::io::Result<Vec<SocketAddr>>> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    #[tokio::test]
    async fn literals_answer_themselves_and_empty_answers_are_errors() {
        let v6 = lookup(&Nowhere, "[::1]", 80).await.unwrap();
        assert_eq!(v6, vec!["[::1]:80".parse().unwrap()]);
        let v4 = lookup(&Nowhere, "10.0.0.1", 5432).await.unwrap();
        assert_eq!(v4, vec!["10.0.0.1:5432".parse().unwrap()]);
        let error = lookup(&Nowhere, "db.example", 5432).await.unwrap_err();
        assert!(error.to_string().contains("`db.example`"), "{error}");
    }
}
