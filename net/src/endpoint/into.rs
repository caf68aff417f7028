//! What a client builder takes as its server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::{Endpoint, EndpointError};

/// What [`Client::builder`](crate::Client::builder) takes as the server:
/// an [`Endpoint`], a string that parses as one, a socket address, or a
/// `(host, port)` pair (tcp). A string that does not parse fails the
/// client's build.
pub trait IntoEndpoint {
    /// The endpoint, or why there is none.
    fn into_endpoint(self) -> Result<Endpoint, EndpointError>;
}

impl IntoEndpoint for Endpoint {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        Ok(self)
    }
}

impl IntoEndpoint for &Endpoint {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        Ok(self.clone())
    }
}

impl IntoEndpoint for &str {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        self.parse()
    }
}

impl IntoEndpoint for String {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        self.parse()
    }
}

impl IntoEndpoint for &String {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        self.parse()
    }
}

impl IntoEndpoint for (&str, u16) {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        Endpoint::tcp(self.0, self.1).map_err(|reason| EndpointError::new(self.0, reason))
    }
}

impl IntoEndpoint for (String, u16) {
    fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
        (self.0.as_str(), self.1).into_endpoint()
    }
}

macro_rules! from_addr {
    ($($addr:ty),*) => {$(
        impl IntoEndpoint for $addr {
            fn into_endpoint(self) -> Result<Endpoint, EndpointError> {
                Ok(Endpoint::from(SocketAddr::from(self)))
            }
        }
    )*};
}

from_addr!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16)
);
