//! Reading a response body frame by frame: gzip is inflated as it arrives, and the result is
//! capped so that a hostile or broken server (a gzip bomb, an endless body) cannot exhaust memory.
//!
//! A gzip member's header and trailer are read here and its deflate data by a raw inflater
//! kept for the next body: setting one up (about 10 KiB of tables, zeroed) cost more than
//! inflating the small bodies of a fan-out, one per parent record. CRC-32 by crc32fast.
//!
//! Memory. The decoded body is one buffer ([`Out`]), grown by the rule of [`Out::make_room`]:
//! never past the cap (inflating stops at the byte that would pass it), exactly once for a
//! `Content-Length`, and, for a body of unknown length that outgrows [`DOUBLING_LIMIT`], to
//! the cap's worth of address space at once instead of again and again. Growing a buffer
//! copies it (mimalloc, the binary's allocator, grows nothing in place and keeps freed memory
//! for a second), so each copy of a large buffer costs its size again whatever the step: a
//! 190 MiB body grown by doubling, by 1.25× or by 8 MiB steps peaked at 444–529 MiB, and
//! reserved at once past 1 MiB at 195 MiB. Pages of the reservation that are never written are
//! never made resident, so a body costs its length plus at most about 2 × [`DOUBLING_LIMIT`]
//! of copies, and a bomb at most the cap plus as much. (Measured, release build with mimalloc:
//! a 200 MB chunked page 449 → 194 MiB, gzipped 322 → 193, with a Content-Length 193 as
//! before; a gzip bomb 587 → 261, an endless body 514 → 259.) The price is address space: a
//! large body holds a reservation of the cap until its `Bytes` are dropped, which only counts
//! where the kernel does not overcommit.
//!
//! The header is read as its bytes arrive, in fixed-size state (no buffer): where the frames
//! of a body fall changes nothing in what is accepted.

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
    out: Out,
    /// `None` for a body as sent (no `Content-Encoding`, or only `identity`).
    gzip: Option<Box<Gunzip>>,
    /// Whether any byte arrived: an empty body stays empty whatever its Content-Encoding
    /// (a 204 may still say gzip).
    empty: bool,
    /// Whether a frame failed: the body cannot be right any more.
    failed: bool,
}

impl Decoder {
    /// A decoder for a body sent with `content_encoding`, holding at most `cap` bytes.
    ///
    /// The header is a list of codings in the order they were applied (RFC 9110 §8.4):
    /// `identity` entries (and empty ones) change nothing, in any case and with any spaces
    /// around the commas; one `gzip` (or `x-gzip`) is inflated. Anything else — `br`,
    /// `deflate`, or gzip twice (inflated once, it would still be gzip) — is
    /// [`BodyError::Unsupported`], naming the header's value (cut to 100 characters).
    pub fn new(content_encoding: Option<&HeaderValue>, cap: usize) -> Result<Self, BodyError> {
        let mut gzip = false;
        for coding in content_encoding
            .map(|v| v.as_bytes())
            .unwrap_or_default()
            .split(|&b| b == b',')
        {
            let coding = coding.trim_ascii();
            if coding.is_empty() || coding.eq_ignore_ascii_case(b"identity") {
                continue;
            }
            let is_gzip =
                coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip");
            if !is_gzip || gzip {
                let value = content_encoding.map(|v| v.as_bytes()).unwrap_or_default();
                return Err(BodyError::Unsupported(shown_value(value)));
            }
            gzip = true;
        }
        Ok(Decoder {
            out: Out {
                buf: Vec::new(),
                cap,
                first: 0,
                #[cfg(test)]
                copied: 0,
            },
            gzip: gzip.then(Box::default),
            empty: true,
            failed: false,
        })
    }

    /// Sizes the body for one announced as `len` bytes (`Content-Length`): exactly that, in
    /// one allocation, for a body as sent (and one announced past the cap is
    /// [`BodyError::TooLarge`] at its first byte); for gzip, four times the compressed length
    /// is the first guess of the inflated one. Nothing is allocated before a byte needs it.
    pub fn reserve(&mut self, len: usize) {
        self.out.first = match self.gzip {
            None => len,
            // Inflated, it is likely several times larger.
            Some(_) => match len.saturating_mul(4) {
                guess if guess > DOUBLING_LIMIT => WHOLE.min(self.out.cap),
                guess => guess.max(FIRST_ROOM),
            },
        };
    }

    /// Takes the next piece of the body as sent. After an error, every call is one.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        if self.failed {
            return Err(corrupt("an earlier frame of this body failed"));
        }
        self.empty &= chunk.is_empty();
        let pushed = self.take(chunk);
        self.failed = pushed.is_err();
        pushed
    }

    fn take(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        match &mut self.gzip {
            Some(gunzip) => gunzip.push(chunk, &mut self.out),
            None => {
                let out = &mut self.out;
                let announced_past_cap = out.first > out.cap && !chunk.is_empty();
                if chunk.len() > out.cap - out.buf.len() || announced_past_cap {
                    return Err(BodyError::TooLarge(out.cap));
                }
                out.make_room(chunk.len());
                out.buf.extend_from_slice(chunk);
                Ok(())
            }
        }
    }

    /// The whole decoded body (an incomplete gzip stream is an error).
    pub fn finish(self) -> Result<Bytes, BodyError> {
        match &self.gzip {
            _ if self.failed => Err(corrupt("an earlier frame of this body failed")),
            Some(_) if self.empty => Ok(Bytes::new()),
            Some(gunzip) if !matches!(gunzip.part, Part::Between | Part::Padding) => {
                Err(corrupt("the body ends inside a gzip member"))
            }
            _ => Ok(Bytes::from(self.out.buf)),
        }
    }
}

/// The value of a header for a message: as sent, at most 100 characters.
fn shown_value(value: &[u8]) -> String {
    const MAX: usize = 100;
    let text = String::from_utf8_lossy(value);
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// The first allocation of a body of unknown length.
const FIRST_ROOM: usize = 16 << 10;
/// Up to this, a buffer of unknown final length doubles (its copies are small); past it, it
/// is given [`WHOLE`] at once (see the module's comment).
const DOUBLING_LIMIT: usize = 1 << 20;
/// The address space a body outgrowing [`DOUBLING_LIMIT`] is given (or its cap, if smaller);
/// with a cap larger than this, it doubles again past it.
const WHOLE: usize = MAX_BODY_BYTES;

/// The decoded body, never longer nor larger than `cap`.
struct Out {
    buf: Vec<u8>,
    cap: usize,
    /// The size of the first allocation when a `Content-Length` told it (0 if none).
    first: usize,
    /// The bytes copied out of buffers given up as the body grew (for tests: what an
    /// allocator that keeps freed memory for a while may still hold).
    #[cfg(test)]
    copied: usize,
}

impl Out {
    /// Makes room for `need` more bytes, `len + need` being within the cap. Grows, when it
    /// must, to: the announced length (the first time, when it covers `need`); else twice
    /// the capacity (at least [`FIRST_ROOM`]) while that stays within [`DOUBLING_LIMIT`];
    /// else [`WHOLE`] at once (then doubling, for a cap past it); never past the cap.
    fn make_room(&mut self, need: usize) {
        let (len, capacity) = (self.buf.len(), self.buf.capacity());
        if capacity - len >= need {
            return;
        }
        let wanted = len + need;
        let target = if capacity == 0 && self.first >= wanted {
            self.first
        } else {
            let doubled = capacity.saturating_mul(2).max(FIRST_ROOM).max(wanted);
            if doubled <= DOUBLING_LIMIT || capacity >= WHOLE {
                doubled
            } else {
                wanted.max(WHOLE)
            }
        };
        #[cfg(test)]
        {
            self.copied += len;
        }
        self.buf.reserve_exact(target.min(self.cap) - len);
    }
}

/// Inflaters between bodies, reset (at most a few per running request).
static INFLATERS: Mutex<Vec<Decompress>> = Mutex::new(Vec::new());
const KEPT_INFLATERS: usize = 64;

/// A gzip stream (members one after another, RFC 1952) inflated into an [`Out`].
///
/// What is accepted is what flate2's `MultiGzDecoder` accepts (the tests compare the two on
/// generated streams), but for two things:
/// - zero bytes after the last member are padding, accepted, as gzip(1) does ("decompression
///   OK, trailing zero bytes ignored"; tar and some servers pad to a block size); any other
///   byte after a member that does not start another member is refused;
/// - an empty body is an empty body (see [`Decoder`]), not a truncated stream.
struct Gunzip {
    /// Taken from [`INFLATERS`] at the first member, given back when dropped.
    inflater: Option<Decompress>,
    part: Part,
    crc: crc32fast::Hasher,
    /// The member's inflated length, modulo 2^32 as its trailer says it.
    size: u32,
}

#[derive(Debug)]
enum Part {
    Header(Header),
    Body,
    Trailer {
        got: usize,
        bytes: [u8; 8],
    },
    /// A member ended (the stream may end here, or another member follow).
    Between,
    /// Zeros after the last member, to the end of the body.
    Padding,
}

impl Default for Gunzip {
    fn default() -> Self {
        Gunzip {
            inflater: None,
            part: Part::Header(Header::default()),
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
    /// Reads `input` on from where the stream stands.
    fn push(&mut self, mut input: &[u8], out: &mut Out) -> Result<(), BodyError> {
        while let Some(&first) = input.first() {
            match &mut self.part {
                Part::Header(header) => {
                    let (used, done) = header.read(input)?;
                    input = &input[used..];
                    if done {
                        self.begin_member();
                    }
                }
                Part::Body => {
                    let used = self.inflate(input, out)?;
                    input = &input[used..];
                }
                Part::Trailer { got, bytes } => {
                    let take = (bytes.len() - *got).min(input.len());
                    bytes[*got..*got + take].copy_from_slice(&input[..take]);
                    *got += take;
                    input = &input[take..];
                    if *got == bytes.len() {
                        let [crc, size] = [&bytes[..4], &bytes[4..]]
                            .map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")));
                        let computed = std::mem::take(&mut self.crc).finalize();
                        if crc != computed || size != self.size {
                            return Err(corrupt("a gzip member fails its CRC-32 or length check"));
                        }
                        self.part = Part::Between;
                    }
                }
                Part::Between if first == 0 => self.part = Part::Padding,
                Part::Between if first == MAGIC[0] => self.part = Part::Header(Header::default()),
                Part::Between => {
                    return Err(corrupt(
                        "bytes after the last gzip member are neither a member nor zero padding",
                    ))
                }
                Part::Padding => {
                    if input.iter().any(|&b| b != 0) {
                        return Err(corrupt(
                            "the zero padding after the gzip stream is not all zeros",
                        ));
                    }
                    return Ok(());
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
    ///
    /// While `out` has room the inflater writes there. When it is full, the inflater is
    /// given one byte of scratch: no byte (the member ends, or needs more input) costs
    /// nothing, and a byte is the next one of the body — past the cap, the body is
    /// [`BodyError::TooLarge`] at once; within it, `out` grows then.
    fn inflate(&mut self, mut input: &[u8], out: &mut Out) -> Result<usize, BodyError> {
        let inflater = self.inflater.as_mut().expect("a member has begun");
        let mut used = 0;
        loop {
            let len = out.buf.len();
            let step = if len < out.buf.capacity() {
                let step = step(inflater, input, Room::Spare(&mut out.buf))?;
                self.crc.update(&out.buf[len..]);
                step
            } else {
                let mut cell = [0];
                let step = step(inflater, input, Room::Cell(&mut cell))?;
                if step.given == 1 {
                    if len == out.cap {
                        return Err(BodyError::TooLarge(out.cap));
                    }
                    out.make_room(1);
                    out.buf.push(cell[0]);
                    self.crc.update(&cell);
                }
                step
            };
            self.size = self.size.wrapping_add(step.given as u32);
            input = &input[step.taken..];
            used += step.taken;
            if step.end {
                self.part = Part::Trailer {
                    got: 0,
                    bytes: [0; 8],
                };
                return Ok(used);
            }
            // Stopped for want of input (the output has room left, or nothing came out into
            // the scratch byte): the next frame goes on.
            if input.is_empty() && (out.buf.len() < out.buf.capacity() || step.given == 0) {
                return Ok(used);
            }
        }
    }
}

/// Where one call of the inflater writes.
enum Room<'a> {
    /// The spare capacity of the body.
    Spare(&'a mut Vec<u8>),
    /// One byte of scratch, when the body is full.
    Cell(&'a mut [u8; 1]),
}

/// What one call of the inflater did.
struct Step {
    taken: usize,
    given: usize,
    end: bool,
}

/// One call of the inflater on `input`.
///
/// A call that takes no input and gives no output while it has input is an error, not
/// something to wait on: the caller would call it again with the same input forever. With a
/// byte of room it cannot happen (zlib-rs takes input or gives output until the stream ends
/// or fails); it did, through a room of zero (`cap + 1` overflowing for a cap of `usize::MAX`),
/// and this stays as the backstop.
fn step(inflater: &mut Decompress, input: &[u8], room: Room) -> Result<Step, BodyError> {
    let (taken, given) = (inflater.total_in(), inflater.total_out());
    let status = match room {
        Room::Spare(buf) => inflater.decompress_vec(input, buf, FlushDecompress::None),
        Room::Cell(cell) => inflater.decompress(input, cell, FlushDecompress::None),
    }
    .map_err(|e| corrupt(&e.to_string()))?;
    let step = Step {
        taken: (inflater.total_in() - taken) as usize,
        given: (inflater.total_out() - given) as usize,
        end: status == Status::StreamEnd,
    };
    if step.taken == 0 && step.given == 0 && !step.end && !input.is_empty() {
        return Err(corrupt("the deflate stream stops making progress"));
    }
    Ok(step)
}

const MAGIC: [u8; 3] = [0x1f, 0x8b, 8]; // and deflate, the only method
const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;
const RESERVED: u8 = 0xe0;

/// The longest FNAME or FCOMMENT accepted, without its NUL (flate2's own bound: a longer
/// field fails in `MultiGzDecoder` too).
///
/// A header is read as it arrives, in fixed-size state, so its length costs no memory; the
/// bound is for time: a name that never ends would have the body read on without a byte of
/// output until the timeout. It counts a field's bytes, not what one frame holds, so it is
/// the same whatever the framing. (FEXTRA says its length in 16 bits: at most 65535 too.)
const MAX_FIELD: usize = 65535;

/// A gzip member header, read as it arrives.
#[derive(Debug)]
struct Header {
    field: Field,
    /// The bytes of the current field read so far.
    got: usize,
    /// The fixed part (ten bytes), then XLEN and the header's CRC16 (two).
    bytes: [u8; 10],
    flags: u8,
    /// The length of FEXTRA.
    extra: usize,
    /// The CRC-32 of the header so far, kept when FHCRC asks for its check.
    crc: crc32fast::Hasher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Fixed,
    ExtraLen,
    Extra,
    Name,
    Comment,
    Check,
}

impl Default for Header {
    fn default() -> Self {
        Header {
            field: Field::Fixed,
            got: 0,
            bytes: [0; 10],
            flags: 0,
            extra: 0,
            crc: crc32fast::Hasher::new(),
        }
    }
}

impl Header {
    /// Reads the header from `input` on; returns the bytes used and whether the header ended.
    fn read(&mut self, input: &[u8]) -> Result<(usize, bool), BodyError> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            let (used, done) = match self.field {
                Field::Fixed => {
                    let take = (10 - self.got).min(rest.len());
                    for (i, &b) in (self.got..).zip(&rest[..take]) {
                        match i {
                            0..3 if b != MAGIC[i] => return Err(corrupt("not a gzip stream")),
                            3 if b & RESERVED != 0 => {
                                return Err(corrupt("reserved gzip header flags are set"))
                            }
                            _ => self.bytes[i] = b,
                        }
                    }
                    (take, self.got + take == 10)
                }
                Field::ExtraLen | Field::Check => {
                    let take = (2 - self.got).min(rest.len());
                    (take, self.got + take == 2)
                }
                Field::Extra => {
                    let take = (self.extra - self.got).min(rest.len());
                    (take, self.got + take == self.extra)
                }
                Field::Name | Field::Comment => match memchr::memchr(0, rest) {
                    Some(nul) => (nul + 1, true),
                    None => (rest.len(), false),
                },
            };
            let taken = &rest[..used];
            match self.field {
                Field::ExtraLen | Field::Check => {
                    self.bytes[self.got..self.got + used].copy_from_slice(taken)
                }
                Field::Name | Field::Comment if self.got + used - usize::from(done) > MAX_FIELD => {
                    return Err(corrupt(
                        "a gzip header file name or comment is longer than 64 KiB",
                    ))
                }
                _ => {}
            }
            if self.flags & FHCRC != 0 && self.field != Field::Check {
                self.crc.update(taken);
            }
            at += used;
            self.got += used;
            if !done {
                return Ok((at, false));
            }
            // The field is whole: on to the next one the flags ask for.
            self.got = 0;
            let mut next = match self.field {
                Field::Fixed => {
                    self.flags = self.bytes[3];
                    if self.flags & FHCRC != 0 {
                        self.crc.update(&self.bytes);
                    }
                    Field::ExtraLen
                }
                Field::ExtraLen => {
                    self.extra = usize::from(u16::from_le_bytes([self.bytes[0], self.bytes[1]]));
                    Field::Extra
                }
                Field::Extra => Field::Name,
                Field::Name => Field::Comment,
                Field::Comment => Field::Check,
                Field::Check => {
                    let sum = u16::from_le_bytes([self.bytes[0], self.bytes[1]]);
                    if std::mem::take(&mut self.crc).finalize() as u16 != sum {
                        return Err(corrupt("the gzip header fails its checksum"));
                    }
                    return Ok((at, true));
                }
            };
            // Skip the fields the flags leave out.
            loop {
                let present = match next {
                    Field::ExtraLen | Field::Extra => self.flags & FEXTRA != 0,
                    Field::Name => self.flags & FNAME != 0,
                    Field::Comment => self.flags & FCOMMENT != 0,
                    Field::Check => self.flags & FHCRC != 0,
                    Field::Fixed => unreachable!("the fixed part comes first"),
                };
                if present && !(next == Field::Extra && self.extra == 0) {
                    break;
                }
                next = match next {
                    Field::ExtraLen | Field::Extra => Field::Name,
                    Field::Name => Field::Comment,
                    Field::Comment => Field::Check,
                    _ => return Ok((at, true)),
                };
            }
            self.field = next;
        }
    }
}

fn corrupt(why: &str) -> BodyError {
    BodyError::Corrupt(io::Error::new(io::ErrorKind::InvalidData, why.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        gzip_at(data, flate2::Compression::best())
    }

    fn gzip_at(data: &[u8], level: flate2::Compression) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
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

    // What follows: memory (capacity and copies), the decisions (padding, long header fields,
    // lists of codings), the no-progress guard, and a comparison with flate2's
    // MultiGzDecoder on generated streams.

    fn multi(body: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(body), &mut out)?;
        Ok(out)
    }

    /// Frame lengths from 1 byte to 64 KiB, spread over the powers of two.
    fn frame_len(rng: &mut fastrand::Rng) -> usize {
        let most = 1 << rng.u32(0..=16);
        rng.usize(1..=most)
    }

    /// Pushes `body` in random frames, checking after each that the buffer never holds more
    /// than the cap.
    fn push_framed(
        decoder: &mut Decoder,
        body: &[u8],
        rng: &mut fastrand::Rng,
    ) -> Result<(), BodyError> {
        let mut rest = body;
        while !rest.is_empty() {
            let (frame, next) = rest.split_at(frame_len(rng).min(rest.len()));
            rest = next;
            let pushed = decoder.push(frame);
            assert!(decoder.out.buf.capacity() <= decoder.out.cap);
            pushed?;
        }
        Ok(())
    }

    /// About `len` bytes of JSON-like text (compresses about 4×).
    fn records(len: usize, rng: &mut fastrand::Rng) -> Vec<u8> {
        let mut text = Vec::with_capacity(len + 100);
        while text.len() < len {
            let id: String = (0..12).map(|_| rng.alphanumeric()).collect();
            let size = rng.u32(..);
            write!(
                text,
                r#"{{"id":"{id}","name":"report {size}.pdf","size":"{size}"}},"#
            )
            .unwrap();
        }
        text.truncate(len);
        text
    }

    #[test]
    fn growth_stays_bounded_whatever_the_framing() {
        // What a body costs is what is written into its buffers: its length, plus what was
        // copied out of the buffers it outgrew. Capacity past what is written is address
        // space only (see the module's comment): it is bounded by the cap.
        const CAP: usize = 64 << 20;
        let mut rng = fastrand::Rng::with_seed(19);
        for len in [5 << 20, 300 << 10, 1000] {
            let text = records(len, &mut rng);
            let zipped = gzip_at(&text, flate2::Compression::fast());
            for (encoding, body) in [(None, &text), (Some("gzip"), &zipped)] {
                for reserve in [false, true] {
                    let header = encoding.map(HeaderValue::from_static);
                    let mut decoder = Decoder::new(header.as_ref(), CAP).unwrap();
                    if reserve {
                        decoder.reserve(body.len());
                    }
                    push_framed(&mut decoder, body, &mut rng).unwrap();
                    let (capacity, copied) = (decoder.out.buf.capacity(), decoder.out.copied);
                    let case = format!("{encoding:?}, {len} bytes, reserve {reserve}: capacity {capacity}, copied {copied}");
                    assert_eq!(decoder.finish().unwrap(), text, "{case}");
                    // Resident at most 1.3 × the length and 2 MiB.
                    assert!(len + copied <= len * 13 / 10 + (2 << 20), "{case}");
                    assert!(copied <= 2 * DOUBLING_LIMIT, "{case}");
                    if encoding.is_none() && reserve {
                        // A Content-Length: one allocation, exactly the body.
                        assert_eq!((capacity, copied), (len, 0), "{case}");
                    } else if len <= DOUBLING_LIMIT {
                        assert!(capacity <= 2 * len + FIRST_ROOM, "{case}");
                    } else {
                        assert!(capacity <= CAP, "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_bomb_or_an_endless_body_stops_at_the_cap_and_no_further() {
        let cap = (4 << 20) + 123;
        let bomb = gzip_at(&vec![0u8; 6 << 20], flate2::Compression::fast());
        assert!(bomb.len() < 64 << 10, "a bomb: {} bytes", bomb.len());
        let endless = vec![b' '; 5 << 20];
        let mut rng = fastrand::Rng::with_seed(1952);
        for (encoding, body) in [(Some("gzip"), &bomb), (None, &endless)] {
            for reserve in [None, Some(body.len()), Some(usize::MAX)] {
                let header = encoding.map(HeaderValue::from_static);
                let mut decoder = Decoder::new(header.as_ref(), cap).unwrap();
                if let Some(len) = reserve {
                    decoder.reserve(len);
                }
                let result = push_framed(&mut decoder, body, &mut rng);
                assert!(matches!(result, Err(BodyError::TooLarge(c)) if c == cap));
                let out = &decoder.out;
                assert!(out.buf.capacity() <= cap, "{encoding:?} {reserve:?}");
                assert!(out.copied <= 2 * DOUBLING_LIMIT, "{encoding:?} {reserve:?}");
                if encoding.is_some() {
                    // Inflating stopped at the byte that would have passed the cap.
                    assert_eq!(out.buf.len(), cap);
                }
            }
        }
        // A plain body announced past the cap fails at its first byte, having taken nothing.
        let mut decoder = Decoder::new(None, 1000).unwrap();
        decoder.reserve(1001);
        decoder.push(b"").unwrap();
        assert!(matches!(decoder.push(b"{"), Err(BodyError::TooLarge(1000))));
        assert_eq!(decoder.out.buf.capacity(), 0);
    }

    #[test]
    fn zero_padding_after_the_last_member_is_accepted_and_nothing_else() {
        let text = br#"{"padded": true}"#;
        let mut two = gzip(text);
        two.extend(gzip(text));
        for zeros in [1, 2, 9, 5000] {
            let mut padded = two.clone();
            padded.resize(two.len() + zeros, 0);
            for frame in [1, 5, 64, padded.len()] {
                assert_eq!(
                    decode(Some("gzip"), &padded, 100, frame).unwrap(),
                    text.repeat(2)
                );
            }
            // flate2 refuses it: the one place ours is the more lenient (documented there).
            assert!(multi(&padded).is_err());
            let mut then_garbage = padded.clone();
            then_garbage.push(1);
            let mut then_member = padded.clone();
            then_member.extend(gzip(text));
            for bad in [&then_garbage, &then_member] {
                for frame in [1, 5, bad.len()] {
                    assert!(matches!(
                        decode(Some("gzip"), bad, 100, frame),
                        Err(BodyError::Corrupt(_))
                    ));
                }
            }
        }
        // Zeros are no gzip stream by themselves.
        assert!(matches!(
            decode(Some("gzip"), &[0; 30], 100, 7),
            Err(BodyError::Corrupt(e)) if e.to_string().contains("not a gzip stream")
        ));
    }

    #[test]
    fn a_long_header_field_gets_one_verdict_whatever_the_framing() {
        let text = b"{}";
        let member = |name: Option<usize>, comment: Option<usize>| {
            let mut builder = flate2::GzBuilder::new();
            if let Some(len) = name {
                builder = builder.filename(vec![b'n'; len]);
            }
            if let Some(len) = comment {
                builder = builder.comment(vec![b'c'; len]);
            }
            let mut encoder = builder
                .extra(vec![b'x'; 65535])
                .write(Vec::new(), flate2::Compression::fast());
            encoder.write_all(text).unwrap();
            encoder.finish().unwrap()
        };
        let cases = [
            (Some(65535), None, true),
            (None, Some(65535), true),
            (Some(65535), Some(65535), true),
            (Some(65536), None, false),
            (None, Some(65536), false),
            (Some(100 << 10), None, false),
        ];
        for (name, comment, accepted) in cases {
            let body = member(name, comment);
            assert_eq!(
                multi(&body).is_ok(),
                accepted,
                "flate2: {name:?} {comment:?}"
            );
            for frame in [1, 3, 4096, 65536, body.len()] {
                let result = decode(Some("gzip"), &body, 100, frame);
                match accepted {
                    true => assert_eq!(result.unwrap(), &text[..]),
                    false => assert!(
                        matches!(&result, Err(BodyError::Corrupt(e)) if e.to_string().contains("longer than 64 KiB")),
                        "{name:?} {comment:?} in frames of {frame}: {result:?}"
                    ),
                }
            }
        }
    }

    #[test]
    fn content_encoding_is_a_list_of_codings() {
        let text = br#"{"a": [1, 2]}"#;
        let zipped = gzip(text);
        for value in [
            "gzip",
            "gzip, identity",
            "identity, gzip",
            " IDENTITY ,GZip ",
            "identity,\tx-gzip",
            "gzip,,",
        ] {
            assert_eq!(
                decode(Some(value), &zipped, 100, 4).unwrap(),
                &text[..],
                "{value}"
            );
        }
        for value in ["", "identity", "Identity, identity", " , "] {
            assert_eq!(
                decode(Some(value), text, 100, 4).unwrap(),
                &text[..],
                "{value}"
            );
        }
        for value in [
            "br",
            "gzip, gzip",
            "x-gzip, GZIP",
            "gzip, br",
            "deflate",
            "identity, compress",
        ] {
            assert!(
                matches!(decode(Some(value), &zipped, 100, 4), Err(BodyError::Unsupported(v)) if v == value.trim()),
                "{value}"
            );
        }
        let long = format!("gzip, {}", "é".repeat(200));
        assert!(matches!(
            decode(Some(&long), &zipped, 100, 4),
            Err(BodyError::Unsupported(v)) if v.chars().count() == 101 && v.ends_with('…') && long.starts_with(v.trim_end_matches('…'))
        ));
    }

    #[test]
    fn an_inflater_that_cannot_move_is_an_error_not_a_loop() {
        // zlib-rs always takes input or gives output while it has both and its stream goes
        // on; without room, in the middle of a match, it can do neither. Without the guard,
        // a caller looping on the same input would spin.
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        raw.write_all(&vec![0u8; 100_000]).unwrap();
        let raw = raw.finish().unwrap();
        let mut inflater = Decompress::new(false);
        let mut some = Vec::with_capacity(10);
        let first = step(&mut inflater, &raw, Room::Spare(&mut some)).unwrap();
        assert_eq!((first.given, first.end), (10, false));
        let mut input = &raw[first.taken..];
        let mut calls = 0;
        let error = loop {
            match step(&mut inflater, input, Room::Spare(&mut Vec::new())) {
                Err(error) => break error,
                Ok(moved) => input = &input[moved.taken..],
            }
            calls += 1;
            assert!(
                calls < 10 && !input.is_empty(),
                "no error after {calls} calls"
            );
        };
        assert!(
            error.to_string().contains("stops making progress"),
            "{error}"
        );
        // The decoder itself gives the inflater room always, even with a cap of usize::MAX
        // (where `cap + 1` once overflowed into no room at all).
        let text = records(50_000, &mut fastrand::Rng::with_seed(7));
        for frame in [1, 16, 4096, 1 << 20] {
            assert_eq!(
                decode(Some("gzip"), &gzip(&text), usize::MAX, frame).unwrap(),
                text
            );
        }
    }

    /// One generated gzip member.
    #[derive(Debug, Clone)]
    struct Member {
        payload: Vec<u8>,
        level: u32,
        name: Option<Vec<u8>>,
        comment: Option<Vec<u8>>,
        extra: Option<Vec<u8>>,
        hcrc: bool,
        mtime: u32,
    }

    impl Member {
        /// The member's bytes: by GzBuilder, with FHCRC added by hand (GzBuilder cannot).
        fn bytes(&self) -> Vec<u8> {
            let mut builder = flate2::GzBuilder::new().mtime(self.mtime);
            if let Some(extra) = &self.extra {
                builder = builder.extra(extra.clone());
            }
            if let Some(name) = &self.name {
                builder = builder.filename(name.clone());
            }
            if let Some(comment) = &self.comment {
                builder = builder.comment(comment.clone());
            }
            let mut encoder = builder.write(Vec::new(), flate2::Compression::new(self.level));
            encoder.write_all(&self.payload).unwrap();
            let mut bytes = encoder.finish().unwrap();
            if self.hcrc {
                let field = |f: &Option<Vec<u8>>, more| f.as_ref().map_or(0, |f| f.len() + more);
                let end =
                    10 + field(&self.extra, 2) + field(&self.name, 1) + field(&self.comment, 1);
                bytes[3] |= FHCRC;
                let sum = crc32fast::hash(&bytes[..end]) as u16;
                bytes.splice(end..end, sum.to_le_bytes());
            }
            bytes
        }
    }

    #[derive(Debug, Clone)]
    enum Damage {
        None,
        Truncate(proptest::sample::Index),
        Flip(proptest::sample::Index, u8),
        /// A bit of one member's header (or just after), where most checks are.
        FlipHeader(proptest::sample::Index, usize, u8),
        Append(Vec<u8>),
    }

    fn member() -> impl proptest::strategy::Strategy<Value = Member> {
        use proptest::collection::vec;
        use proptest::prelude::*;
        let payload = prop_oneof![
            Just(Vec::new()),
            vec(any::<u8>(), 0..400),
            vec(0u8..4, 0..4000),
            (1usize..200).prop_map(|n| br#"{"k": "v"}, "#.repeat(n)),
        ];
        let text = || proptest::option::of(vec(1u8..=255, 0..40));
        (
            payload,
            0u32..=9,
            (
                text(),
                text(),
                proptest::option::of(vec(any::<u8>(), 0..40)),
            ),
            any::<bool>(),
            any::<u32>(),
        )
            .prop_map(
                |(payload, level, (name, comment, extra), hcrc, mtime)| Member {
                    payload,
                    level,
                    name,
                    comment,
                    extra,
                    hcrc,
                    mtime,
                },
            )
    }

    /// What the decoder must make of `body`: MultiGzDecoder's verdict, but for the two
    /// documented leniencies (an empty body, zero padding after the last member).
    fn expected(body: &[u8]) -> Option<Vec<u8>> {
        if body.is_empty() {
            return Some(Vec::new());
        }
        if let Ok(out) = multi(body) {
            return Some(out);
        }
        // Padded: a whole stream, then only zeros. (At most one cut can work: more zeros
        // after a stream are not a member, fewer cut into it.)
        let zeros = body.iter().rev().take_while(|&&b| b == 0).count();
        (1..=zeros)
            .map(|k| &body[..body.len() - k])
            .filter(|stream| !stream.is_empty())
            .find_map(|stream| multi(stream).ok())
    }

    #[test]
    fn the_decoder_agrees_with_multigzdecoder() {
        use proptest::collection::vec;
        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed, TestRunner};
        let damage = prop_oneof![
            3 => Just(Damage::None),
            2 => any::<proptest::sample::Index>().prop_map(Damage::Truncate),
            2 => (any::<proptest::sample::Index>(), 1u8..=255).prop_map(|(at, x)| Damage::Flip(at, x)),
            3 => (any::<proptest::sample::Index>(), 0usize..24, 0u32..8)
                .prop_map(|(member, at, bit)| Damage::FlipHeader(member, at, 1 << bit)),
            1 => vec(Just(0u8), 1..20).prop_map(Damage::Append),
            1 => vec(any::<u8>(), 1..6).prop_map(Damage::Append),
        ];
        let case = (
            vec(member(), 0..4),
            damage,
            any::<u64>(),
            prop_oneof![Just(None), Just(Some(0)), any::<usize>().prop_map(Some)],
            1usize..3000,
        );
        let config = Config {
            cases: 800,
            rng_seed: RngSeed::Fixed(19),
            failure_persistence: None,
            max_shrink_iters: 2000,
            ..Config::default()
        };
        TestRunner::new(config)
            .run(&case, |(members, damage, seed, reserve, small_cap)| {
                let members: Vec<Vec<u8>> = members.iter().map(Member::bytes).collect();
                let mut body = members.concat();
                match damage {
                    Damage::None => {}
                    Damage::Truncate(at) if !body.is_empty() => body.truncate(at.index(body.len())),
                    Damage::Flip(at, x) if !body.is_empty() => {
                        let at = at.index(body.len());
                        body[at] ^= x
                    }
                    Damage::FlipHeader(member, at, x) if !members.is_empty() => {
                        let member = member.index(members.len());
                        let start: usize = members[..member].iter().map(Vec::len).sum();
                        let at = (start + at).min(body.len() - 1);
                        body[at] ^= x
                    }
                    Damage::Append(tail) => body.extend(tail),
                    _ => {}
                }
                let want = expected(&body);
                for cap in [1 << 20, small_cap] {
                    let mut rng = fastrand::Rng::with_seed(seed);
                    let mut decoder =
                        Decoder::new(Some(&HeaderValue::from_static("gzip")), cap).unwrap();
                    if let Some(len) = reserve {
                        decoder.reserve(len);
                    }
                    let got = push_framed(&mut decoder, &body, &mut rng);
                    let got = match got {
                        Ok(()) => decoder.finish(),
                        Err(error) => {
                            // A body that failed fails again (and returns at once).
                            prop_assert!(
                                decoder.push(&body[body.len() / 2..]).is_err() || body.len() < 2
                            );
                            Err(error)
                        }
                    };
                    match (&want, got) {
                        (Some(want), Ok(got)) => prop_assert_eq!(&got[..], &want[..]),
                        (Some(want), Err(BodyError::TooLarge(_))) if want.len() > cap => {}
                        (None, Err(BodyError::Corrupt(_) | BodyError::TooLarge(_))) => {}
                        (want, got) => prop_assert!(
                            false,
                            "cap {}: flate2 {:?}, ours {:?}",
                            cap,
                            want.as_ref().map(Vec::len),
                            got.map(|b| b.len())
                        ),
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
