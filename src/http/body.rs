//! Reading a response body frame by frame: gzip is inflated as it arrives, and the result is
//! capped so that a hostile or broken server (a gzip bomb, an endless body) cannot exhaust memory.

use std::io::Write;

use bytes::Bytes;
use flate2::write::MultiGzDecoder;
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
    Corrupt(std::io::Error),
    #[error("unsupported Content-Encoding {0:?}")]
    Unsupported(String),
}

/// A growing buffer that refuses to grow past its cap.
struct Capped {
    bytes: Vec<u8>,
    cap: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            return Err(std::io::Error::other(TooLarge));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The marker inside the `io::Error` that [`Capped`] returns, told apart from corrupt input.
#[derive(Debug, thiserror::Error)]
#[error("the body exceeds its cap")]
struct TooLarge;

/// Decodes one body: `push` each frame, then `finish`.
pub struct Decoder {
    cap: usize,
    kind: Kind,
    /// Whether any byte arrived: an empty body stays empty whatever its Content-Encoding
    /// (a 204 may still say gzip).
    empty: bool,
}

enum Kind {
    Identity(Capped),
    /// Boxed: the inflate state is large, and most bodies are small.
    Gzip(Box<MultiGzDecoder<Capped>>),
}

impl Decoder {
    /// A decoder for a body sent with `content_encoding`, holding at most `cap` bytes.
    pub fn new(content_encoding: Option<&HeaderValue>, cap: usize) -> Result<Self, BodyError> {
        let sink = Capped {
            bytes: Vec::new(),
            cap,
        };
        let encoding = content_encoding
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let kind = match encoding.as_str() {
            "" | "identity" => Kind::Identity(sink),
            "gzip" | "x-gzip" => Kind::Gzip(Box::new(MultiGzDecoder::new(sink))),
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
            Kind::Identity(sink) => sink.bytes.reserve(len.min(self.cap)),
            // Inflated, it is several times larger: growth by doubling is as good a guess.
            Kind::Gzip(decoder) => decoder.get_mut().bytes.reserve(len.min(self.cap)),
        }
    }

    /// Takes the next piece of the body as sent.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), BodyError> {
        self.empty &= chunk.is_empty();
        let written = match &mut self.kind {
            Kind::Identity(sink) => sink.write_all(chunk),
            Kind::Gzip(decoder) => decoder.write_all(chunk),
        };
        written.map_err(|e| self.error(e))
    }

    /// The whole decoded body (an incomplete gzip stream is an error).
    pub fn finish(self) -> Result<Bytes, BodyError> {
        let cap = self.cap;
        match self.kind {
            Kind::Identity(sink) => Ok(Bytes::from(sink.bytes)),
            Kind::Gzip(_) if self.empty => Ok(Bytes::new()),
            Kind::Gzip(decoder) => decoder
                .finish()
                .map(|sink| Bytes::from(sink.bytes))
                .map_err(|e| classify(e, cap)),
        }
    }

    fn error(&self, err: std::io::Error) -> BodyError {
        classify(err, self.cap)
    }
}

fn classify(err: std::io::Error, cap: usize) -> BodyError {
    if err.get_ref().is_some_and(|inner| inner.is::<TooLarge>()) {
        BodyError::TooLarge(cap)
    } else {
        BodyError::Corrupt(err)
    }
}

#[cfg(test)]
mod tests {
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
