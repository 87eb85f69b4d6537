//! Message I/O over a [`Stream`]: one read buffer, one write buffer.
//!
//! Reads append to a single [`BytesMut`]; complete frames are split off and frozen by
//! [`BackendMessage::parse`], so WAL payloads leave as [`bytes::Bytes`] slices of what the
//! socket delivered, never copied. Both buffers keep their contents across a cancelled
//! `await`, so reading in a `tokio::select!` loses nothing.

use bytes::BytesMut;
use pgwalrus_proto::BackendMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::Error;
use crate::transport::Stream;

/// Bytes asked of the socket per read when the buffer has little room left.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Framed {
    stream: Stream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    target: String,
}

impl Framed {
    /// Wraps `stream`; `already_read` holds bytes read from it before (normally none).
    pub(crate) fn new(stream: Stream, target: String, already_read: BytesMut) -> Self {
        let mut read_buf = already_read;
        read_buf.reserve(READ_CHUNK);
        Self {
            stream,
            read_buf,
            write_buf: BytesMut::new(),
            target,
        }
    }

    /// Whether a whole message is already buffered (the next read needs no socket read).
    pub(crate) fn has_buffered_message(&self) -> bool {
        // Tag byte, then the length word (which counts itself, not the tag).
        self.read_buf
            .get(1..5)
            .and_then(|len| <[u8; 4]>::try_from(len).ok())
            .is_some_and(|len| (u32::from_be_bytes(len) as usize) < self.read_buf.len())
    }

    /// The connection target, for error messages.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// Bytes queued for the server; encode messages into it, then [`flush`](Self::flush).
    pub(crate) fn write_buf(&mut self) -> &mut BytesMut {
        &mut self.write_buf
    }

    /// Writes everything queued and flushes the stream.
    ///
    /// Cancel-safe: bytes not yet written stay queued for the next call.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        let result = async {
            while !self.write_buf.is_empty() {
                self.stream.write_buf(&mut self.write_buf).await?;
            }
            self.stream.flush().await
        }
        .await;
        result.map_err(|error| Error::Io {
            op: "send data to",
            target: self.target.clone(),
            error,
        })
    }

    /// The next message, or `None` at a clean end of stream (no partial frame pending).
    ///
    /// Cancel-safe.
    pub(crate) async fn read_message_or_eof(&mut self) -> Result<Option<BackendMessage>, Error> {
        loop {
            match BackendMessage::parse(&mut self.read_buf) {
                Ok(Some(msg)) => return Ok(Some(msg)),
                Ok(None) => {}
                Err(source) => {
                    return Err(Error::Protocol {
                        target: self.target.clone(),
                        source,
                    });
                }
            }
            if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 8 {
                self.read_buf.reserve(READ_CHUNK);
            }
            let n = self
                .stream
                .read_buf(&mut self.read_buf)
                .await
                .map_err(|error| Error::Io {
                    op: "receive data from",
                    target: self.target.clone(),
                    error,
                })?;
            if n == 0 {
                return Ok(None);
            }
        }
    }

    /// The next message; the end of the stream is [`Error::Closed`].
    pub(crate) async fn read_message(&mut self) -> Result<BackendMessage, Error> {
        match self.read_message_or_eof().await? {
            Some(m) => Ok(m),
            None => Err(Error::Closed {
                target: self.target.clone(),
                last_error: None,
            }),
        }
    }

    /// Shuts the stream down (best effort).
    pub(crate) async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
