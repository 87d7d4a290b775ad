//! Skipping an array or object of JSON text 64 bytes at a time, for the scan's count pass and
//! the fields a record's columns do not reach. Each block is classified into bit masks (quotes,
//! backslashes, brackets, commas), strings are masked out by a prefix XOR of their unescaped
//! quotes (the method of simdjson's first stage), and only the brackets outside strings are
//! visited one by one. A byte-at-a-time walk spent most of its time inside strings.
//!
//! Like the rest of the scan it follows the structure, not the grammar: a page it accepts may
//! still be wrong in ways that the row scan (or serde_json after it) reports.

const BLOCK: usize = 64;

/// What lies directly inside a skipped container.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Skipped {
    /// The index just past the closing bracket.
    pub end: usize,
    /// Objects directly inside it (its records, for a records array).
    pub objects: usize,
    /// Commas directly inside it.
    pub commas: usize,
}

/// Skips the array or object that opens at `i` (`b[i]` is `[` or `{`); `None` if it does not
/// close before the text ends.
pub(super) fn container(b: &[u8], i: usize) -> Option<Skipped> {
    debug_assert!(matches!(b.get(i), Some(b'[' | b'{')));
    let mut depth = 0usize;
    let mut objects = 0;
    let mut commas = 0;
    // All ones while a string runs on from the previous block; 1 when the previous block ended
    // in an odd run of backslashes (this block's first byte is escaped).
    let mut in_string = 0u64;
    let mut escaped_first = 0u64;
    let mut at = i;
    while at < b.len() {
        let block = load(b, at);
        let masks = Masks::of(&block);
        let quotes = masks.quote & !escaped(masks.backslash, &mut escaped_first);
        let strings = prefix_xor(quotes) ^ in_string;
        in_string = ((strings as i64) >> 63) as u64;
        let open = masks.open & !strings;
        let comma = masks.comma & !strings;
        let mut brackets = (masks.open | masks.close) & !strings;
        let mut from = 0; // the first bit whose commas are not yet counted
        while brackets != 0 {
            let bit = brackets.trailing_zeros();
            if depth == 1 {
                commas += (comma & bits(from, bit)).count_ones() as usize;
            }
            if open >> bit & 1 == 1 {
                if depth == 1 && block[bit as usize] == b'{' {
                    objects += 1;
                }
                depth += 1;
            } else {
                depth -= 1;
                if depth == 0 {
                    return Some(Skipped {
                        end: at + bit as usize + 1,
                        objects,
                        commas,
                    });
                }
            }
            from = bit + 1;
            brackets &= brackets - 1;
        }
        if depth == 1 {
            commas += (comma & bits(from, 64)).count_ones() as usize;
        }
        at += BLOCK;
    }
    None
}

/// The 64 bytes from `at`, padded with spaces past the end of the text.
fn load(b: &[u8], at: usize) -> [u8; BLOCK] {
    match b.get(at..at + BLOCK) {
        Some(block) => block.try_into().expect("64 bytes"),
        None => {
            let mut block = [b' '; BLOCK];
            block[..b.len() - at].copy_from_slice(&b[at..]);
            block
        }
    }
}

/// The bits `from..to` (`from` may be 64: none).
fn bits(from: u32, to: u32) -> u64 {
    let below_to = if to == 64 { u64::MAX } else { (1 << to) - 1 };
    u64::MAX.checked_shl(from).unwrap_or(0) & below_to
}

/// Each bit `k` set where everything up to and including bit `k` of `x` has an odd count of
/// ones: inside a string, given its quotes (the opening quote is inside, the closing one not).
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The bytes escaped by a backslash, given the block's backslashes; `first` carries whether the
/// next block's first byte is escaped. Runs of backslashes escape every other one: a run that
/// starts on an even bit escapes the odd bits after it, and the other way round. (simdjson's
/// branchless escape finder.)
fn escaped(backslash: u64, first: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*first;
    let follows_escape = backslash << 1 | *first;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
    *first = u64::from(overflow);
    (EVEN ^ (even_starts << 1)) & follows_escape
}

/// Where each kind of byte the skip cares about is in a block: bit `k` for byte `k`.
struct Masks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
    comma: u64,
}

impl Masks {
    /// `[` and `]` differ from `{` and `}` only in bit 0x20, so one compare finds both of each.
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; BLOCK]) -> Masks {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut masks = Masks::none();
        for (k, chunk) in block.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of every x86_64 CPU; the load reads the 16 bytes of `chunk`
            // and needs no alignment.
            let [quote, backslash, open, close, comma] = unsafe {
                let eq = |v: __m128i, byte: u8| -> u64 {
                    u64::from(
                        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8))) as u16,
                    )
                };
                let v = _mm_loadu_si128(chunk.as_ptr().cast());
                let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                [
                    eq(v, b'"'),
                    eq(v, b'\\'),
                    eq(folded, b'{'),
                    eq(folded, b'}'),
                    eq(v, b','),
                ]
            };
            let shift = 16 * k;
            masks.quote |= quote << shift;
            masks.backslash |= backslash << shift;
            masks.open |= open << shift;
            masks.close |= close << shift;
            masks.comma |= comma << shift;
        }
        masks
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; BLOCK]) -> Masks {
        let mut masks = Masks::none();
        for (k, &byte) in block.iter().enumerate() {
            let folded = byte | 0x20;
            masks.quote |= u64::from(byte == b'"') << k;
            masks.backslash |= u64::from(byte == b'\\') << k;
            masks.open |= u64::from(folded == b'{') << k;
            masks.close |= u64::from(folded == b'}') << k;
            masks.comma |= u64::from(byte == b',') << k;
        }
        masks
    }

    fn none() -> Masks {
        Masks {
            quote: 0,
            backslash: 0,
            open: 0,
            close: 0,
            comma: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same skip a byte at a time, as the scan did it before.
    fn bytewise(b: &[u8], i: usize) -> Option<Skipped> {
        let (mut depth, mut objects, mut commas, mut j) = (0, 0, 0, i);
        loop {
            match b.get(j)? {
                b'"' => {
                    j += 1;
                    loop {
                        match b.get(j)? {
                            b'"' => break,
                            b'\\' => j += 2,
                            _ => j += 1,
                        }
                    }
                }
                b'{' | b'[' => {
                    if depth == 1 && b[j] == b'{' {
                        objects += 1;
                    }
                    depth += 1;
                }
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(Skipped {
                            end: j + 1,
                            objects,
                            commas,
                        });
                    }
                }
                b',' if depth == 1 => commas += 1,
                _ => {}
            }
            j += 1;
        }
    }

    #[test]
    fn skips_containers_across_blocks() {
        let page = br#"[{"a": "]}\"\\", "b": [1, {"c": null}]}, {"s":3}, { }, {"x": ["\\\"]"]} , {} ] tail"#;
        let skipped = container(page, 0).unwrap();
        assert_eq!(skipped.end, page.len() - 5);
        assert_eq!((skipped.objects, skipped.commas), (5, 4));
        assert_eq!(container(b"[1, 2", 0), None);
        assert_eq!(container(br#"["]"#, 0), None);
        assert_eq!(container(br#"{"a": "\"}"#, 0), None);
    }

    #[test]
    fn agrees_with_a_bytewise_walk_on_random_text() {
        // Strings full of backslashes and quotes, falling across block edges anywhere.
        let pieces: [&[u8]; 12] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b"\"a\"",
            br#""\\""#,
            br#""\"""#,
            br#""\\\"]""#,
            br#""x\\\\\\\\""#,
            b"1",
            b" ",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let mut text = b"[".to_vec();
            let len = rng.usize(0..200);
            for _ in 0..len {
                text.extend_from_slice(pieces[rng.usize(..pieces.len())]);
            }
            text.push(b']');
            assert_eq!(
                container(&text, 0),
                bytewise(&text, 0),
                "{}",
                String::from_utf8_lossy(&text)
            );
        }
    }
}
