//! Reading a response body frame by frame: gzip is inflated as it arrives, and the result is
//! capped so that a hostile or broken server (a gzip bomb, an endless body) cannot exhaust memory.
//!
//! A gzip member's header and trailer are read here and its deflate data by a raw inflater
//! kept for the next body: setting one up (about 10 KiB of tables, zeroed) cost more than
//! inflating the small bodies of a fan-out, one per parent record. CRC-32 by crc32fast.

use std::io;
use std::sync::Mutex;

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use http::HeaderValue;

/// The most bytes one response may have once decompressed. Google's largest pages are a few
/// MiB; this only stops what would otherwise run the machine out of memory.
pub const MAX_BODY_BYTES: usize = 256 << 20;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("larger than {} MiB", .0 >> 20)]
    TooLarge(usize),
    #[error("corrupt gzip: {0}")]
    Corrupt(io::Error),
    #[error("unsupported Content-Encoding {0:?}")]
    Unsupported(String),
}

/// Decodes one body: `push` each frame, then `finish`.
pub struct Decoder {
    cap: usize,
    kind: Kind,
    /// Whether any byte arrived: an empty body stays empty whatever its Content-Encoding
    /// (a 204 may still say gzip).
    empty: bool,
}

enum Kind {
    Identity(Vec<u8>),
    Gzip(Box<Gunzip>),
}

impl Decoder {
    /// A decoder for a body sent with `content_encoding`, holding at most `cap` bytes.
    pub fn new(content_encoding: Option<&HeaderValue>, cap: usize) -> Result<Self, BodyError> {
        let encoding = content_encoding
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let kind = match encoding.as_str() {
            "" | "identity" => Kind::Identity(Vec::new()),
            "gzip" | "x-gzip" => Kind::Gzip(Box::default()),
            _ => return Err(BodyError::Unsupported(encoding)),
        };
        Ok(Decoder {
            cap,
            kind,
            empty: true,
        })
    }

    /// Makes room for a body announced as `len` bytes (`Content-Length`), within the cap.
    pub fn reserve(&mut self, len: usize) {
        match &mut self.kind {
            Kind::Identity(bytes) => bytes.reserve(len.min(self.cap)),
            // Inflated, it is several times larger: growth by doubling is as good a guess.
            Kind::Gzip(gunzip) => gunzip.out.reserve(len.min(self.cap)),
        }
    }

    /// Takes the next piece of the body as sent.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        self.empty &= chunk.is_empty();
        match &mut self.kind {
            Kind::Identity(bytes) if bytes.len() + chunk.len() > self.cap => {
                Err(BodyError::TooLarge(self.cap))
            }
            Kind::Identity(bytes) => {
                bytes.extend_from_slice(chunk);
                Ok(())
            }
            Kind::Gzip(gunzip) => gunzip.push(chunk, self.cap),
        }
    }

    /// The whole decoded body (an incomplete gzip stream is an error).
    pub fn finish(self) -> Result<Bytes, BodyError> {
        match self.kind {
            Kind::Identity(bytes) => Ok(Bytes::from(bytes)),
            Kind::Gzip(_) if self.empty => Ok(Bytes::new()),
            Kind::Gzip(mut gunzip) => match gunzip.part {
                Part::Between => Ok(Bytes::from(std::mem::take(&mut gunzip.out))),
                _ => Err(corrupt("the body ends inside a gzip member")),
            },
        }
    }
}

/// Inflaters between bodies, reset (at most a few per running request).
static INFLATERS: Mutex<Vec<Decompress>> = Mutex::new(Vec::new());
const KEPT_INFLATERS: usize = 64;

/// A gzip stream (members one after another, RFC 1952) inflated into `out`.
struct Gunzip {
    out: Vec<u8>,
    /// Taken from [`INFLATERS`] at the first member, given back when dropped.
    inflater: Option<Decompress>,
    part: Part,
    /// A header or trailer that has not arrived whole yet.
    pending: Vec<u8>,
    crc: crc32fast::Hasher,
    /// The member's inflated length, modulo 2^32 as its trailer says it.
    size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Header,
    Body,
    Trailer,
    /// A member ended (the stream may end here, or another member follow).
    Between,
}

impl Default for Gunzip {
    fn default() -> Self {
        Gunzip {
            out: Vec::new(),
            inflater: None,
            part: Part::Header,
            pending: Vec::new(),
            crc: crc32fast::Hasher::new(),
            size: 0,
        }
    }
}

impl Drop for Gunzip {
    fn drop(&mut self) {
        if let Some(mut inflater) = self.inflater.take() {
            inflater.reset(false);
            let mut kept = INFLATERS.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() < KEPT_INFLATERS {
                kept.push(inflater);
            }
        }
    }
}

impl Gunzip {
    fn push(&mut self, input: &[u8], cap: usize) -> Result<(), BodyError> {
        if self.pending.is_empty() {
            return self.feed(input, cap);
        }
        let mut joined = std::mem::take(&mut self.pending);
        joined.extend_from_slice(input);
        self.feed(&joined, cap)
    }

    /// Reads `input` on from where the stream stands; a header or trailer cut short waits in
    /// `pending` for the next frame.
    fn feed(&mut self, mut input: &[u8], cap: usize) -> Result<(), BodyError> {
        while !input.is_empty() {
            match self.part {
                Part::Header | Part::Between => match header_len(input)? {
                    Some(len) => {
                        input = &input[len..];
                        self.begin_member();
                    }
                    None if input.len() > MAX_HEADER => {
                        return Err(corrupt("a gzip header longer than 64 KiB"))
                    }
                    None => {
                        self.part = Part::Header;
                        self.pending.extend_from_slice(input);
                        return Ok(());
                    }
                },
                Part::Body => {
                    let used = self.inflate(input, cap)?;
                    input = &input[used..];
                }
                Part::Trailer => {
                    let Some((trailer, rest)) = input.split_first_chunk::<8>() else {
                        self.pending.extend_from_slice(input);
                        return Ok(());
                    };
                    let [crc, size] = [&trailer[..4], &trailer[4..]]
                        .map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")));
                    let computed = std::mem::take(&mut self.crc).finalize();
                    if crc != computed || size != self.size {
                        return Err(corrupt("a gzip member fails its CRC-32 or length check"));
                    }
                    input = rest;
                    self.part = Part::Between;
                }
            }
        }
        Ok(())
    }

    fn begin_member(&mut self) {
        match &mut self.inflater {
            Some(inflater) => inflater.reset(false),
            None => {
                let kept = INFLATERS.lock().unwrap_or_else(|e| e.into_inner()).pop();
                self.inflater = Some(kept.unwrap_or_else(|| Decompress::new(false)));
            }
        }
        self.crc = crc32fast::Hasher::new();
        self.size = 0;
        self.part = Part::Body;
    }

    /// Inflates what it can of `input` into `out`; returns the bytes of `input` used (the
    /// part moves on to the trailer at the member's end).
    fn inflate(&mut self, mut input: &[u8], cap: usize) -> Result<usize, BodyError> {
        let inflater = self.inflater.as_mut().expect("a member has begun");
        let mut used = 0;
        loop {
            if self.out.len() == self.out.capacity() {
                // Doubling, but never room for more than one byte past the cap.
                let len = self.out.len();
                let room = len.max(16 << 10).min(cap + 1 - len);
                self.out.reserve_exact(room);
            }
            let (len, taken) = (self.out.len(), inflater.total_in());
            let status = inflater
                .decompress_vec(input, &mut self.out, FlushDecompress::None)
                .map_err(|e| corrupt(&e.to_string()))?;
            let produced = &self.out[len..];
            self.crc.update(produced);
            self.size = self.size.wrapping_add(produced.len() as u32);
            if self.out.len() > cap {
                return Err(BodyError::TooLarge(cap));
            }
            let step = (inflater.total_in() - taken) as usize;
            if step == 0 && produced.is_empty() && !input.is_empty() && status != Status::StreamEnd
            {
                // Input and room, yet nothing moved: the stream cannot go on.
                return Err(corrupt("the deflate stream stops making progress"));
            }
            input = &input[step..];
            used += step;
            if status == Status::StreamEnd {
                self.part = Part::Trailer;
                return Ok(used);
            }
            // Stopped for want of input (the output has room left): the next frame goes on.
            if input.is_empty() && self.out.len() < self.out.capacity() {
                return Ok(used);
            }
        }
    }
}

/// Headers longer than this (an endless file name) are refused.
const MAX_HEADER: usize = 64 << 10;

/// The length of the gzip member header at the start of `b`, `None` if `b` holds only part of
/// it; an error if `b` does not start like one.
fn header_len(b: &[u8]) -> Result<Option<usize>, BodyError> {
    const MAGIC: [u8; 3] = [0x1f, 0x8b, 8]; // and deflate, the only method
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    if !MAGIC.starts_with(&b[..b.len().min(3)]) {
        return Err(corrupt("not a gzip stream"));
    }
    let Some(&flags) = b.get(3) else {
        return Ok(None);
    };
    if flags & 0xe0 != 0 {
        return Err(corrupt("reserved gzip header flags are set"));
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let Some(xlen) = b.get(at..at + 2) else {
            return Ok(None);
        };
        at += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            match b.get(at..).and_then(|rest| memchr::memchr(0, rest)) {
                Some(nul) => at += nul + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & FHCRC != 0 {
        let Some(sum) = b.get(at..at + 2) else {
            return Ok(None);
        };
        if crc32fast::hash(&b[..at]) as u16 != u16::from_le_bytes([sum[0], sum[1]]) {
            return Err(corrupt("the gzip header fails its checksum"));
        }
        at += 2;
    }
    Ok((b.len() >= at).then_some(at))
}

fn corrupt(why: &str) -> BodyError {
    BodyError::Corrupt(io::Error::new(io::ErrorKind::InvalidData, why.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn decode(
        encoding: Option<&str>,
        body: &[u8],
        cap: usize,
        frame: usize,
    ) -> Result<Bytes, BodyError> {
        let header = encoding.map(|e| HeaderValue::from_str(e).unwrap());
        let mut decoder = Decoder::new(header.as_ref(), cap)?;
        for chunk in body.chunks(frame) {
            decoder.push(chunk)?;
        }
        decoder.finish()
    }

    #[test]
    fn gzip_is_inflated_across_frame_boundaries() {
        let text = br#"{"files":[{"id":"f1","name":"Caf\u00e9"}]}"#.repeat(50);
        let body = gzip(&text);
        for frame in [1, 7, 100, body.len()] {
            assert_eq!(decode(Some("gzip"), &body, 1 << 20, frame).unwrap(), text);
        }
        assert_eq!(decode(Some(" GZIP "), &body, 1 << 20, 64).unwrap(), text);
    }

    #[test]
    fn header_fields_are_skipped_and_checked() {
        let text = b"{\"kind\": \"drive#fileList\"}";
        let mut encoder = flate2::GzBuilder::new()
            .filename("page.json")
            .comment("a comment")
            .extra(vec![7; 300])
            .write(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text).unwrap();
        let named = encoder.finish().unwrap();
        // The header checksum (FHCRC): the low 16 bits of the header's CRC-32.
        let plain = gzip(text);
        let mut checked = plain[..10].to_vec();
        checked[3] |= 2;
        let sum = crc32fast::hash(&checked) as u16;
        checked.extend_from_slice(&sum.to_le_bytes());
        checked.extend_from_slice(&plain[10..]);
        for body in [&named, &checked] {
            for frame in [1, 3, 11, body.len()] {
                assert_eq!(decode(Some("gzip"), body, 1000, frame).unwrap(), &text[..]);
            }
        }
        checked[10] ^= 1;
        assert!(matches!(
            decode(Some("gzip"), &checked, 1000, 4),
            Err(BodyError::Corrupt(e)) if e.to_string().contains("header fails its checksum")
        ));
    }

    #[test]
    fn a_wrong_crc_or_length_is_corrupt() {
        let body = gzip(b"{\"a\": 1}");
        for at in [body.len() - 8, body.len() - 1] {
            let mut bad = body.clone();
            bad[at] ^= 0x40;
            assert!(matches!(
                decode(Some("gzip"), &bad, 1000, 5),
                Err(BodyError::Corrupt(e)) if e.to_string().contains("CRC-32 or length")
            ));
        }
        let mut trailing = body.clone();
        trailing.extend_from_slice(b"garbage");
        assert!(matches!(
            decode(Some("gzip"), &trailing, 1000, 5),
            Err(BodyError::Corrupt(_))
        ));
    }

    #[test]
    fn an_inflater_is_reused_cleanly_after_a_failed_body() {
        let first = br#"{"first": "page"}"#.repeat(40);
        let second = br#"{"second": 2}"#.repeat(40);
        for _ in 0..3 {
            // Dropped halfway through a member: its inflater goes back to be reused.
            let body = gzip(&first);
            let mut decoder = Decoder::new(Some(&HeaderValue::from_static("gzip")), 1000).unwrap();
            decoder.push(&body[..body.len() / 2]).unwrap();
            drop(decoder);
            assert_eq!(
                decode(Some("gzip"), &gzip(&second), 1000, 9).unwrap(),
                second
            );
            assert_eq!(decode(Some("gzip"), &gzip(&first), 1000, 9).unwrap(), first);
        }
    }

    #[test]
    fn concatenated_gzip_members_are_one_body() {
        let mut body = gzip(b"{\"a\":");
        body.extend(gzip(b"1}"));
        assert_eq!(
            decode(Some("gzip"), &body, 100, 3).unwrap(),
            &b"{\"a\":1}"[..]
        );
    }

    #[test]
    fn a_bomb_stops_at_the_cap_not_at_its_size() {
        let body = gzip(&vec![0u8; 1 << 20]);
        assert!(body.len() < 2048, "a bomb: {} bytes", body.len());
        assert!(matches!(
            decode(Some("gzip"), &body, 64 << 10, 512),
            Err(BodyError::TooLarge(cap)) if cap == 64 << 10
        ));
        // Exactly the cap is allowed.
        assert_eq!(
            decode(Some("gzip"), &body, 1 << 20, 512).unwrap().len(),
            1 << 20
        );
    }

    #[test]
    fn plain_bodies_are_capped_too() {
        assert!(matches!(
            decode(None, &[b' '; 1001], 1000, 100),
            Err(BodyError::TooLarge(1000))
        ));
        assert_eq!(decode(Some("identity"), b"{}", 2, 1).unwrap(), &b"{}"[..]);
        assert_eq!(decode(Some("gzip"), b"", 2, 1).unwrap(), &b""[..]);
    }

    #[test]
    fn truncated_or_foreign_bodies_are_errors() {
        let body = gzip(b"{\"complete\": false}");
        assert!(matches!(
            decode(Some("gzip"), &body[..body.len() - 4], 1000, 5),
            Err(BodyError::Corrupt(_))
        ));
        assert!(matches!(
            decode(Some("gzip"), b"{\"not\": \"gzip\"}", 1000, 5),
            Err(BodyError::Corrupt(_))
        ));
        assert!(matches!(
            decode(Some("br"), b"", 1000, 5),
            Err(BodyError::Unsupported(e)) if e == "br"
        ));
    }
}
