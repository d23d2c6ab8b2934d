//! TDS packets on a byte stream, and TLS carried inside PRELOGIN packets.
//!
//! Packet headers come from `tds-protocol`; what a server does with them (reassembling a
//! message, splitting a response at the negotiated packet size, wrapping the TLS handshake) is
//! here, because that crate only implements the client's side.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tds_protocol::{PacketHeader, PacketStatus, PacketType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The packet size the double announces at login (tiberius' default too).
pub const PACKET_SIZE: usize = 4096;
const HEADER: usize = 8;

/// A whole client message: the type of its first packet and the payloads of all its packets.
#[derive(Debug)]
pub struct Message {
    pub packet_type: u8,
    pub payload: Vec<u8>,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Reads packets up to the one marked end-of-message. `None` when the client closed the
/// connection between messages.
pub async fn read_message<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Option<Message>> {
    let mut payload = Vec::new();
    let mut packet_type = None;
    loop {
        let mut head = [0u8; HEADER];
        match s.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && packet_type.is_none() => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
        let header = PacketHeader::decode(&mut &head[..]).map_err(invalid)?;
        let len = usize::from(header.length)
            .checked_sub(HEADER)
            .ok_or_else(|| invalid("packet shorter than its header"))?;
        let start = payload.len();
        payload.resize(start + len, 0);
        s.read_exact(&mut payload[start..]).await?;
        packet_type.get_or_insert(head[0]);
        if header.status.contains(PacketStatus::END_OF_MESSAGE) {
            return Ok(Some(Message {
                packet_type: head[0],
                payload,
            }));
        }
    }
}

fn header(packet_type: PacketType, last: bool, payload_len: usize, id: u8) -> [u8; HEADER] {
    let status = if last {
        PacketStatus::END_OF_MESSAGE
    } else {
        PacketStatus::empty()
    };
    let mut h = PacketHeader::new(packet_type, status, (payload_len + HEADER) as u16);
    h.packet_id = id;
    h.spid = 51;
    let mut out = BytesMut::with_capacity(HEADER);
    h.encode(&mut out);
    let mut arr = [0u8; HEADER];
    arr.copy_from_slice(&out);
    arr
}

/// Writes one response message packet by packet as it is produced, so a large result set is
/// never held whole and a slow reader holds the writer back (TCP backpressure).
#[derive(Debug)]
pub struct ResponseWriter {
    buf: Vec<u8>,
    packet_id: u8,
}

impl ResponseWriter {
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(PACKET_SIZE),
            packet_id: 1,
        }
    }

    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Sends every full packet in the buffer (not marked last).
    pub async fn flush_full<S: AsyncWrite + Unpin>(&mut self, s: &mut S) -> io::Result<()> {
        let room = PACKET_SIZE - HEADER;
        while self.buf.len() > room {
            let rest = self.buf.split_off(room);
            let chunk = std::mem::replace(&mut self.buf, rest);
            self.send(s, &chunk, false).await?;
        }
        Ok(())
    }

    /// Sends whatever is buffered without ending the message: what a server has put on the wire
    /// when its connection breaks mid-result.
    pub async fn flush_partial<S: AsyncWrite + Unpin>(&mut self, s: &mut S) -> io::Result<()> {
        self.flush_full(s).await?;
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.send(s, &chunk, false).await?;
        }
        s.flush().await
    }

    /// Sends the rest and ends the message.
    pub async fn finish<S: AsyncWrite + Unpin>(mut self, s: &mut S) -> io::Result<()> {
        self.flush_full(s).await?;
        let chunk = std::mem::take(&mut self.buf);
        self.send(s, &chunk, true).await?;
        s.flush().await
    }

    async fn send<S: AsyncWrite + Unpin>(
        &mut self,
        s: &mut S,
        payload: &[u8],
        last: bool,
    ) -> io::Result<()> {
        let h = header(
            PacketType::TabularResult,
            last,
            payload.len(),
            self.packet_id,
        );
        self.packet_id = self.packet_id.wrapping_add(1);
        s.write_all(&h).await?;
        s.write_all(payload).await
    }
}

/// Writes a complete message of `packet_type` (used for the PRELOGIN answer).
pub async fn write_message<S: AsyncWrite + Unpin>(
    s: &mut S,
    packet_type: PacketType,
    payload: &[u8],
) -> io::Result<()> {
    s.write_all(&header(packet_type, true, payload.len(), 1))
        .await?;
    s.write_all(payload).await?;
    s.flush().await
}

/// The server's side of TLS in TDS 7.x: during the handshake every TLS record travels inside
/// PRELOGIN packets; afterwards TLS runs directly on the socket and TDS packets travel inside it.
#[derive(Debug)]
pub struct PreloginTls<S> {
    inner: S,
    handshaking: bool,
    head: [u8; HEADER],
    head_read: usize,
    body_left: usize,
    pending: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
}

impl<S> PreloginTls<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            handshaking: true,
            head: [0; HEADER],
            head_read: 0,
            body_left: 0,
            pending: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
        }
    }

    pub fn handshake_done(&mut self) {
        self.handshaking = false;
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PreloginTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.handshaking {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if this.body_left == 0 {
            while this.head_read < HEADER {
                let mut rb = ReadBuf::new(&mut this.head[this.head_read..]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    return Poll::Ready(Ok(())); // end of stream
                }
                this.head_read += n;
            }
            if this.head[0] != PacketType::PreLogin as u8 {
                return Poll::Ready(Err(invalid(
                    "expected a PRELOGIN packet during the TLS handshake",
                )));
            }
            let len = usize::from(u16::from_be_bytes([this.head[2], this.head[3]]));
            this.body_left = len.saturating_sub(HEADER);
            this.head_read = 0;
            if this.body_left == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let want = this.body_left.min(buf.remaining());
        let mut tmp = vec![0u8; want];
        let mut rb = ReadBuf::new(&mut tmp);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
        let n = rb.filled().len();
        buf.put_slice(&tmp[..n]);
        this.body_left -= n;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PreloginTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.handshaking {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        this.pending.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.out_pos == this.out.len() && !this.pending.is_empty() {
            // One flush of the TLS engine is one flight: wrap it in PRELOGIN packets.
            this.out.clear();
            this.out_pos = 0;
            for chunk in this.pending.chunks(PACKET_SIZE - HEADER) {
                this.out
                    .extend_from_slice(&header(PacketType::PreLogin, true, chunk.len(), 1));
                this.out.extend_from_slice(chunk);
            }
            this.pending.clear();
        }
        while this.out_pos < this.out.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &this.out[this.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.out_pos += n;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
