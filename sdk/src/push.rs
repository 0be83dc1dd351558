//! Push connectors: instead of pulling from a source, they turn HTTP requests that senders make
//! to `inlet serve` (log drains, webhooks) into rows. The host keeps one instance per drain and
//! acknowledges a request only once the rows it produced are durable.

use crate::bindings::exports::inlet::connector::push::{
    Guest, Request as WitRequest, Response as WitResponse,
};
use crate::bindings::exports::inlet::connector::source::Guest as SourceGuest;
use crate::bindings::inlet::connector::types as wit;
use crate::{Error, Output, Source, State};
use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

/// A request as `inlet serve` received it (already authenticated and within the size limit).
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, `PUT`...
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of header `name` (give it lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What to answer once the request's rows are durable.
#[derive(Debug, Clone)]
pub struct Response {
    /// A 2xx status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// `204 No Content`.
    pub fn no_content() -> Self {
        Self {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// A push connector. [`Source::discover`] names the streams it writes; [`Source::read`] has
/// nothing to pull (return an error saying so).
pub trait Push: Source + Sized + 'static {
    /// Makes the instance that will handle requests, from the settings and the newest durable
    /// state.
    fn open(config: Self::Config, state: State) -> Result<Self, Error>;

    /// Handles one request: validate it whole, then emit its rows. On `Err`, emit nothing.
    fn handle(&mut self, request: &Request, out: &mut Output) -> Result<Response, Error>;

    /// The state to commit with everything emitted so far; asked right before each group commit.
    /// The default keeps the previous state.
    fn state(&self) -> Result<Option<State>, Error> {
        Ok(None)
    }
}

thread_local! {
    /// The open instance (components are single-threaded).
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Adapts a [`Push`] implementation to the generated `push` exports. Used by
/// [`crate::export_push!`].
#[doc(hidden)]
pub struct PushAdapter<P>(PhantomData<P>);

impl<P: Push> Guest for PushAdapter<P> {
    fn open(config: String, state: Option<String>) -> Result<(), wit::Error> {
        let config: P::Config = crate::source::parse_settings(&config)?;
        let state = State::parse(state.as_deref())?;
        let instance = P::open(config, state)?;
        INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(instance)));
        Ok(())
    }

    fn state() -> Result<Option<String>, wit::Error> {
        INSTANCE.with(|slot| {
            let slot = slot.borrow();
            let instance = slot
                .as_ref()
                .and_then(|i| i.downcast_ref::<P>())
                .ok_or_else(|| Error::internal("`state` before `open`"))?;
            Ok(instance.state()?.map(|state| state.to_json()))
        })
    }

    fn handle(request: WitRequest) -> Result<WitResponse, wit::Error> {
        let request = Request {
            method: request.method,
            path: request.path,
            headers: request.headers,
            body: request.body,
        };
        INSTANCE.with(|slot| {
            let mut slot = slot.borrow_mut();
            let instance = slot
                .as_mut()
                .and_then(|i| i.downcast_mut::<P>())
                .ok_or_else(|| Error::internal("`handle` before `open`"))?;
            let mut output = Output::new();
            let response = instance.handle(&request, &mut output)?;
            Ok(WitResponse {
                status: response.status,
                headers: response.headers,
                body: response.body,
            })
        })
    }
}

/// The `push` exports of a connector that is not a push connector (every SDK component exports
/// them, as the SDK builds one world).
impl<S: Source> Guest for crate::Adapter<S> {
    fn open(_: String, _: Option<String>) -> Result<(), wit::Error> {
        Err(Error::config("this connector pulls data; it cannot receive pushes").into())
    }

    fn handle(_: WitRequest) -> Result<WitResponse, wit::Error> {
        Err(Error::config("this connector pulls data; it cannot receive pushes").into())
    }

    fn state() -> Result<Option<String>, wit::Error> {
        Ok(None)
    }
}

/// A push connector's `source` exports are its [`Source`] implementation's.
impl<P: Push> SourceGuest for PushAdapter<P> {
    fn spec() -> wit::ConnectorSpec {
        <crate::Adapter<P> as SourceGuest>::spec()
    }

    fn check(config: String) -> Result<(), wit::Error> {
        <crate::Adapter<P> as SourceGuest>::check(config)
    }

    fn discover(config: String) -> Result<Vec<wit::Stream>, wit::Error> {
        <crate::Adapter<P> as SourceGuest>::discover(config)
    }

    fn partitions(config: String, stream: String, count: u32) -> Result<Vec<String>, wit::Error> {
        <crate::Adapter<P> as SourceGuest>::partitions(config, stream, count)
    }

    fn read(
        config: String,
        streams: Vec<wit::ConfiguredStream>,
        state: Option<String>,
    ) -> Result<(), wit::Error> {
        <crate::Adapter<P> as SourceGuest>::read(config, streams, state)
    }
}
