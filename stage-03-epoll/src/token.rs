//! [`Token`]: the caller's name for a registration.

/// A number the caller picks when registering a descriptor and gets back in
/// every [`Event`](crate::Event) for it: usually an index into the caller's
/// own table of connections.
///
/// The kernel stores it in the `u64` data word of the `epoll_event` and never
/// looks at it. The poller itself does not look at it either, so two
/// registrations may share a token if the caller wants that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub usize);

impl From<Token> for usize {
    fn from(token: Token) -> usize {
        token.0
    }
}
