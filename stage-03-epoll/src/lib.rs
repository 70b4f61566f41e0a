//! stage-03-epoll (being written).
