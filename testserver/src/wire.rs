//! The MongoDB wire protocol: framing, OP_MSG, the legacy OP_QUERY handshake
//! and OP_REPLY.
//!
//! Layouts follow the MongoDB Wire Protocol reference and the drivers'
//! OP_MSG specification. Anything malformed is a [`WireError`]: the
//! connection that sent it is closed (as mongod does for protocol
//! violations), never the server.

use bson::{Document, RawDocument};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const OP_REPLY: i32 = 1;
pub const OP_QUERY: i32 = 2004;
pub const OP_COMPRESSED: i32 = 2012;
pub const OP_MSG: i32 = 2013;

/// mongod's `maxMessageSizeBytes`, advertised in `hello`.
pub const MAX_MESSAGE_SIZE: usize = 48_000_000;
/// mongod's `maxBsonObjectSize`.
pub const MAX_BSON_SIZE: usize = 16 * 1024 * 1024;
const HEADER_LEN: usize = 16;

pub const FLAG_CHECKSUM_PRESENT: u32 = 1;
pub const FLAG_MORE_TO_COME: u32 = 1 << 1;
pub const FLAG_EXHAUST_ALLOWED: u32 = 1 << 16;
/// Bits 0..16 are "required": a receiver must reject a message carrying one
/// it does not know (OP_MSG spec).
const KNOWN_REQUIRED_FLAGS: u32 = FLAG_CHECKSUM_PRESENT | FLAG_MORE_TO_COME;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("reading from the socket failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("message length {0} is outside 16..={MAX_MESSAGE_SIZE} bytes")]
    BadLength(i64),
    #[error("unsupported opcode {0}")]
    UnknownOpcode(i32),
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

fn malformed(what: &'static str, detail: impl Into<String>) -> WireError {
    WireError::Malformed {
        what,
        detail: detail.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub length: i32,
    pub request_id: i32,
    pub response_to: i32,
    pub op_code: i32,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// OP_MSG with document sequences already folded into the body, as the
    /// OP_MSG spec says a server must treat them.
    Msg { flags: u32, body: Document },
    /// Legacy OP_QUERY; only the handshake may use it on MongoDB 7.0.
    Query {
        flags: i32,
        collection: String,
        skip: i32,
        limit: i32,
        query: Document,
    },
}

/// Reads one whole message, or fails without reading past it.
pub async fn read_message<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<(Header, Request), WireError> {
    let mut head = [0u8; HEADER_LEN];
    match reader.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(WireError::Closed),
        Err(e) => return Err(e.into()),
    }
    let header = Header {
        length: le_i32(&head[0..4]),
        request_id: le_i32(&head[4..8]),
        response_to: le_i32(&head[8..12]),
        op_code: le_i32(&head[12..16]),
    };
    let length = header.length as i64;
    if length < HEADER_LEN as i64 || length > MAX_MESSAGE_SIZE as i64 {
        return Err(WireError::BadLength(length));
    }
    // Refuse unknown opcodes before buffering an arbitrary body for them.
    if !matches!(header.op_code, OP_MSG | OP_QUERY) {
        return Err(WireError::UnknownOpcode(header.op_code));
    }
    let mut body = vec![0u8; header.length as usize - HEADER_LEN];
    reader.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            malformed("message", "truncated: the connection closed mid-message")
        } else {
            WireError::Io(e)
        }
    })?;
    let request = match header.op_code {
        OP_MSG => parse_op_msg(&body)?,
        _ => parse_op_query(&body)?,
    };
    Ok((header, request))
}

fn le_i32(b: &[u8]) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    i32::from_le_bytes(a)
}

/// A cursor over a message body that never reads out of bounds.
struct Bytes<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.remaining() < n {
            return Err(malformed(what, "message ends early"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, WireError> {
        Ok(le_i32(self.take(4, what)?))
    }

    fn cstring(&mut self, what: &'static str) -> Result<String, WireError> {
        let rest = &self.buf[self.pos..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| malformed(what, "unterminated C string"))?;
        let s = std::str::from_utf8(&rest[..nul])
            .map_err(|_| malformed(what, "C string is not UTF-8"))?
            .to_string();
        self.pos += nul + 1;
        Ok(s)
    }

    /// One BSON document, validated completely (a bad document closes the
    /// connection instead of surfacing later as a confusing command error).
    fn document(&mut self, what: &'static str) -> Result<Document, WireError> {
        if self.remaining() < 5 {
            return Err(malformed(what, "message ends before a BSON document"));
        }
        let len = le_i32(&self.buf[self.pos..self.pos + 4]);
        if len < 5 || len as usize > self.remaining() || len as usize > MAX_BSON_SIZE + 16 * 1024 {
            return Err(malformed(
                what,
                format!("BSON document length {len} is invalid"),
            ));
        }
        let bytes = self.take(len as usize, what)?;
        let raw = RawDocument::from_bytes(bytes).map_err(|e| malformed(what, e.to_string()))?;
        Document::try_from(raw).map_err(|e| malformed(what, e.to_string()))
    }
}

fn parse_op_msg(body: &[u8]) -> Result<Request, WireError> {
    let mut b = Bytes { buf: body, pos: 0 };
    let flags = b.i32("OP_MSG flags")? as u32;
    let unknown_required = flags & 0xFFFF & !KNOWN_REQUIRED_FLAGS;
    if unknown_required != 0 {
        return Err(malformed(
            "OP_MSG flags",
            format!("unknown required flag bits {unknown_required:#x}"),
        ));
    }
    let mut end = body.len();
    if flags & FLAG_CHECKSUM_PRESENT != 0 {
        // The CRC-32C is optional to verify; mongod skips it on loopback too.
        if end < 8 {
            return Err(malformed("OP_MSG", "checksum flag set but no room for it"));
        }
        end -= 4;
    }
    b.buf = &body[..end];
    let mut main: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<Document>)> = Vec::new();
    while b.remaining() > 0 {
        let kind = b.take(1, "OP_MSG section kind")?[0];
        match kind {
            0 => {
                if main.is_some() {
                    return Err(malformed("OP_MSG", "more than one body section"));
                }
                main = Some(b.document("OP_MSG body")?);
            }
            1 => {
                let start = b.pos;
                let size = b.i32("document sequence size")?;
                if size < 5 || (size as usize) > b.remaining() + 4 {
                    return Err(malformed(
                        "document sequence",
                        format!("size {size} is invalid"),
                    ));
                }
                let stop = start + size as usize;
                let id = b.cstring("document sequence identifier")?;
                let mut docs = Vec::new();
                while b.pos < stop {
                    let mut inner = Bytes {
                        buf: &b.buf[..stop],
                        pos: b.pos,
                    };
                    docs.push(inner.document("document sequence")?);
                    b.pos = inner.pos;
                }
                if b.pos != stop {
                    return Err(malformed(
                        "document sequence",
                        "size does not match contents",
                    ));
                }
                sequences.push((id, docs));
            }
            other => {
                return Err(malformed("OP_MSG", format!("unknown section kind {other}")));
            }
        }
    }
    let mut body = main.ok_or_else(|| malformed("OP_MSG", "no body section"))?;
    for (id, docs) in sequences {
        if body.contains_key(&id) {
            return Err(malformed(
                "OP_MSG",
                format!("field '{id}' is both in the body and a document sequence"),
            ));
        }
        body.insert(
            id,
            docs.into_iter()
                .map(bson::Bson::Document)
                .collect::<Vec<_>>(),
        );
    }
    Ok(Request::Msg { flags, body })
}

fn parse_op_query(body: &[u8]) -> Result<Request, WireError> {
    let mut b = Bytes { buf: body, pos: 0 };
    let flags = b.i32("OP_QUERY flags")?;
    let collection = b.cstring("OP_QUERY collection name")?;
    let skip = b.i32("OP_QUERY numberToSkip")?;
    let limit = b.i32("OP_QUERY numberToReturn")?;
    let query = b.document("OP_QUERY query")?;
    if b.remaining() > 0 {
        // returnFieldsSelector: validated, then unused by commands.
        b.document("OP_QUERY returnFieldsSelector")?;
    }
    if b.remaining() > 0 {
        return Err(malformed("OP_QUERY", "trailing bytes after the documents"));
    }
    Ok(Request::Query {
        flags,
        collection,
        skip,
        limit,
        query,
    })
}

fn header_bytes(out: &mut Vec<u8>, request_id: i32, response_to: i32, op_code: i32) {
    out.extend_from_slice(&0i32.to_le_bytes()); // patched once the length is known
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&response_to.to_le_bytes());
    out.extend_from_slice(&op_code.to_le_bytes());
}

fn patch_length(out: &mut [u8]) {
    let len = out.len() as i32;
    out[0..4].copy_from_slice(&len.to_le_bytes());
}

/// An OP_MSG reply with a single body section.
pub fn encode_op_msg(request_id: i32, response_to: i32, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 21);
    header_bytes(&mut out, request_id, response_to, OP_MSG);
    out.extend_from_slice(&flags.to_le_bytes());
    out.push(0);
    out.extend_from_slice(body);
    patch_length(&mut out);
    out
}

/// An OP_REPLY carrying one document, the answer to an OP_QUERY command.
pub fn encode_op_reply(request_id: i32, response_to: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 36);
    header_bytes(&mut out, request_id, response_to, OP_REPLY);
    out.extend_from_slice(&8i32.to_le_bytes()); // responseFlags: AwaitCapable
    out.extend_from_slice(&0i64.to_le_bytes()); // cursorID
    out.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
    out.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
    out.extend_from_slice(body);
    patch_length(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn op_msg_bytes(flags: u32, sections: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        header_bytes(&mut out, 7, 0, OP_MSG);
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(sections);
        patch_length(&mut out);
        out
    }

    fn doc_bytes(d: &Document) -> Vec<u8> {
        let mut v = Vec::new();
        d.to_writer(&mut v).unwrap();
        v
    }

    async fn read(bytes: Vec<u8>) -> Result<(Header, Request), WireError> {
        read_message(&mut bytes.as_slice()).await
    }

    #[tokio::test]
    async fn op_msg_folds_document_sequences_into_the_body() {
        let mut sections = vec![0u8];
        sections.extend(doc_bytes(&doc! {"insert": "c", "$db": "test"}));
        let docs: Vec<u8> = [doc! {"_id": 1}, doc! {"_id": 2}]
            .iter()
            .flat_map(doc_bytes)
            .collect();
        sections.push(1);
        let size = 4 + "documents".len() + 1 + docs.len();
        sections.extend((size as i32).to_le_bytes());
        sections.extend(b"documents\0");
        sections.extend(docs);
        let (header, req) = read(op_msg_bytes(0, &sections)).await.unwrap();
        assert_eq!(header.request_id, 7);
        let Request::Msg { body, .. } = req else {
            panic!("not OP_MSG")
        };
        assert_eq!(body.get_array("documents").unwrap().len(), 2);
    }

    #[tokio::test]
    async fn checksum_is_skipped_and_unknown_required_flags_rejected() {
        let mut sections = vec![0u8];
        sections.extend(doc_bytes(&doc! {"ping": 1}));
        sections.extend([1, 2, 3, 4]);
        let (_, req) = read(op_msg_bytes(FLAG_CHECKSUM_PRESENT, &sections))
            .await
            .unwrap();
        assert!(matches!(req, Request::Msg { .. }));
        let err = read(op_msg_bytes(1 << 4, &sections)).await.unwrap_err();
        assert!(err.to_string().contains("unknown required flag"), "{err}");
    }

    #[tokio::test]
    async fn malformed_input_is_an_error_not_a_panic() {
        let mut sections = vec![0u8];
        sections.extend(doc_bytes(&doc! {"ping": 1}));
        let good = op_msg_bytes(0, &sections);
        // Every truncation and every single-byte corruption must be handled.
        for cut in 0..good.len() {
            let _ = read(good[..cut].to_vec()).await;
        }
        for i in 0..good.len() {
            for v in [0u8, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = read(bad).await;
            }
        }
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&i32::MAX.to_le_bytes());
        assert!(matches!(read(huge).await, Err(WireError::BadLength(_))));
        let mut opcode = good;
        opcode[12..16].copy_from_slice(&9999i32.to_le_bytes());
        assert!(matches!(
            read(opcode).await,
            Err(WireError::UnknownOpcode(9999))
        ));
    }

    #[tokio::test]
    async fn op_query_round_trip() {
        let mut out = Vec::new();
        header_bytes(&mut out, 1, 0, OP_QUERY);
        out.extend(0i32.to_le_bytes());
        out.extend(b"admin.$cmd\0");
        out.extend(0i32.to_le_bytes());
        out.extend((-1i32).to_le_bytes());
        out.extend(doc_bytes(&doc! {"isMaster": 1}));
        patch_length(&mut out);
        let (_, req) = read(out).await.unwrap();
        let Request::Query {
            collection, query, ..
        } = req
        else {
            panic!()
        };
        assert_eq!(collection, "admin.$cmd");
        assert_eq!(query, doc! {"isMaster": 1});
        let reply = encode_op_reply(2, 1, &doc_bytes(&doc! {"ok": 1.0}));
        assert_eq!(le_i32(&reply[0..4]) as usize, reply.len());
        assert_eq!(le_i32(&reply[12..16]), OP_REPLY);
    }
}
