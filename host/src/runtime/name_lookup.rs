//! The guest's name lookups (`wasi:sockets/ip-name-lookup`): only the host names of declared TCP
//! destinations, answered with the addresses checked when the run started.
//!
//! wasmtime-wasi allows every lookup or none. Every lookup would let a connector leak data through
//! the names it asks for (DNS exfiltration), and a name asked again could answer something other
//! than what was checked. So this implementation shadows wasmtime-wasi's in the linker: a declared
//! name answers its pinned address (handed to wasmtime-wasi as an address literal, which it answers
//! without any DNS query), an address literal answers itself, and any other name is refused with a
//! [`Violation`], which fails the call. A declared name answers one address (wasmtime-wasi's answer
//! stream cannot be built with several literals): its first IPv4 address from the start, else its
//! first address, since a server listening on IPv4 only is more common than one on IPv6 only.

use super::run::RunData;
use super::sandbox::{NetworkGrant, Violation, normalize_name};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, Host, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode};
use wasmtime_wasi::p2::{DynPollable, Network, SocketError};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

/// The names a run may look up, and where refusals go.
pub(super) struct PinnedNames {
    /// Declared names (normalized) and the addresses checked for them.
    names: BTreeMap<String, Vec<IpAddr>>,
    /// The declared destinations, for messages.
    declared: String,
    refusals: Arc<Mutex<Vec<Violation>>>,
}

impl PinnedNames {
    /// The names of `grant`'s TCP destinations; refusals are recorded in `refusals`.
    pub(super) fn new(grant: &NetworkGrant, refusals: Arc<Mutex<Vec<Violation>>>) -> Self {
        let declared = match grant.names.is_empty() {
            true => "none".to_owned(),
            false => grant.names.keys().cloned().collect::<Vec<_>>().join(", "),
        };
        Self {
            names: grant.names.clone(),
            declared,
            refusals,
        }
    }

    /// What to hand wasmtime-wasi for the guest's `name`: an address literal, or the error code
    /// the guest gets (a refusal is recorded).
    fn answer(&self, name: &str) -> Result<String, ErrorCode> {
        if name.parse::<Ipv6Addr>().is_ok() {
            return Ok(name.to_owned());
        }
        let domain = match url::Host::parse(name) {
            Ok(url::Host::Domain(domain)) => domain,
            Ok(url::Host::Ipv4(ip)) => return Ok(ip.to_string()),
            Ok(url::Host::Ipv6(ip)) => return Ok(ip.to_string()),
            Err(_) => return Err(ErrorCode::InvalidArgument),
        };
        if let Some(pinned) = self.names.get(&normalize_name(&domain)) {
            let chosen = pinned.iter().find(|ip| ip.is_ipv4()).or(pinned.first());
            return chosen
                .map(ToString::to_string)
                .ok_or(ErrorCode::NameUnresolvable);
        }
        let violation = Violation::NameLookup {
            name: name.to_owned(),
            declared: self.declared.clone(),
        };
        tracing::warn!("{violation}");
        self.refusals
            .lock()
            .expect("refusal list is never poisoned")
            .push(violation);
        Err(ErrorCode::PermanentResolverFailure)
    }
}

/// The [`HasData`] of the shadowing `ip-name-lookup` implementation.
pub(super) struct PinnedLookup;

impl HasData for PinnedLookup {
    type Data<'a> = PinnedLookupView<'a>;
}

/// wasmtime-wasi's sockets view, with the run's pinned names.
pub(super) struct PinnedLookupView<'a> {
    pub(super) sockets: WasiSocketsCtxView<'a>,
    pub(super) names: &'a PinnedNames,
}

impl Host for PinnedLookupView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        let answer = self.names.answer(&name)?;
        self.sockets.resolve_addresses(network, answer)
    }
}

/// `ip-name-lookup` needs `network`'s error conversions: wasmtime-wasi's.
impl network::Host for PinnedLookupView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets, error)
    }

    fn network_error_code(
        &mut self,
        error: Resource<network::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets, error)
    }
}

impl network::HostNetwork for PinnedLookupView<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, network)
    }
}

impl HostResolveAddressStream for PinnedLookupView<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<network::IpAddress>, SocketError> {
        self.sockets.resolve_next_address(stream)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.sockets, stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        HostResolveAddressStream::drop(&mut self.sockets, stream)
    }
}

/// Replaces wasmtime-wasi's `ip-name-lookup` in `linker` (added before) by the pinned one.
pub(super) fn add_to_linker(linker: &mut Linker<RunData>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added =
        ip_name_lookup::add_to_linker::<RunData, PinnedLookup>(linker, RunData::name_lookup);
    linker.allow_shadowing(false);
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned() -> (PinnedNames, Arc<Mutex<Vec<Violation>>>) {
        let mut grant = NetworkGrant::default();
        grant.names.insert(
            "db.example".into(),
            vec![
                "fd00::7".parse().unwrap(),
                "10.0.0.7".parse().unwrap(),
                "10.0.0.8".parse().unwrap(),
            ],
        );
        let refusals = Arc::new(Mutex::new(Vec::new()));
        (PinnedNames::new(&grant, refusals.clone()), refusals)
    }

    #[test]
    fn declared_names_answer_their_pinned_address_and_others_are_refused() {
        let (names, refusals) = pinned();
        assert_eq!(names.answer("db.example").unwrap(), "10.0.0.7");
        assert_eq!(names.answer("DB.Example.").unwrap(), "10.0.0.7");
        assert_eq!(names.answer("192.0.2.1").unwrap(), "192.0.2.1");
        assert_eq!(names.answer("::1").unwrap(), "::1");
        assert_eq!(names.answer("[::1]").unwrap(), "::1");
        assert!(refusals.lock().unwrap().is_empty());

        assert!(matches!(
            names.answer("c2VjcmV0.exfil.example"),
            Err(ErrorCode::PermanentResolverFailure)
        ));
        let refused = refusals.lock().unwrap();
        let message = refused[0].to_string();
        assert!(
            message.contains("name lookup of `c2VjcmV0.exfil.example` refused")
                && message.contains("(db.example)"),
            "{message}"
        );
    }
}
