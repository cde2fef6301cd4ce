//! LZO1X decompression, for kdump pages compressed with LZO
//! (`makedumpfile -l`, QEMU's `kdump-lzo`), checked at every step: a
//! back-reference before the start of the page, a run past the end of the
//! input or beyond one page is an error, never a panic or an overrun.
//!
//! The stream is a sequence of instructions (the first byte may instead be
//! a literal run of `b - 17` bytes). Each instruction is a back-reference
//! (copy `len` bytes from `distance` back in the output) followed by 0–3
//! literals given by its low two bits, or, right after a back-reference
//! with no literals, a literal run of its own:
//!
//! | first byte | meaning |
//! |---|---|
//! | `1LLDDDSS` / `01LDDDSS` + `H` (M2) | `len` = `(b >> 5) + 1` (3–8), `distance` = `(H << 3) + DDD + 1` |
//! | `001LLLLL` (M3) | `len` = `L + 2` (`L` = 0: 33 + 255 per zero byte + the next byte), then 16 bits `D` (14 bits of distance − 1, 2 bits of literals) |
//! | `0001HLLL` (M4) | like M3 with `L` over 3 bits (0: 9 + …); `distance` = `(H << 14) + D + 16384`; a distance of exactly 16384 ends the stream |
//! | `0000LLLL` after a back-reference with no literals | `L + 3` literals (`L` = 0: 18 + 255 per zero byte + the next byte) |
//! | `0000DDSS` + `H` after 1–3 literals (M1) | 2 bytes from `(H << 2) + DD + 1` back |
//! | `0000DDSS` + `H` after a literal run | 3 bytes from `(H << 2) + DD + 2049` back |

/// Decompress `src` into at most `max` bytes.
pub(crate) fn decompress(src: &[u8], max: usize) -> Result<Vec<u8>, String> {
    let mut d = Decoder {
        src,
        ip: 0,
        out: Vec::with_capacity(max),
        max,
    };
    d.run()?;
    Ok(d.out)
}

struct Decoder<'a> {
    src: &'a [u8],
    ip: usize,
    out: Vec<u8>,
    max: usize,
}

impl Decoder<'_> {
    fn byte(&mut self) -> Result<usize, String> {
        let b = *self
            .src
            .get(self.ip)
            .ok_or("lzo: the stream ends before its end marker")?;
        self.ip += 1;
        Ok(usize::from(b))
    }

    fn le16(&mut self) -> Result<usize, String> {
        let lo = self.byte()?;
        Ok(lo | self.byte()? << 8)
    }

    /// A long length: `base`, plus 255 for each zero byte, plus the first
    /// non-zero byte (bounded by the input's length).
    fn long_len(&mut self, base: usize) -> Result<usize, String> {
        let mut n = base;
        loop {
            match self.byte()? {
                0 => n += 255,
                b => return Ok(n + b),
            }
        }
    }

    fn room(&self, n: usize) -> Result<(), String> {
        if self.out.len() + n > self.max {
            return Err(format!(
                "lzo: the page decompresses to more than {} bytes",
                self.max
            ));
        }
        Ok(())
    }

    fn literals(&mut self, n: usize) -> Result<(), String> {
        let end = self
            .ip
            .checked_add(n)
            .filter(|&e| e <= self.src.len())
            .ok_or("lzo: a literal run goes past the end of the stream")?;
        self.room(n)?;
        self.out.extend_from_slice(&self.src[self.ip..end]);
        self.ip = end;
        Ok(())
    }

    fn copy(&mut self, distance: usize, n: usize) -> Result<(), String> {
        if distance > self.out.len() {
            return Err(format!(
                "lzo: a back-reference {distance} bytes back, {} bytes into the page",
                self.out.len()
            ));
        }
        self.room(n)?;
        let start = self.out.len() - distance;
        // Byte by byte: the source may overlap what is being written.
        for i in start..start + n {
            let b = self.out[i];
            self.out.push(b);
        }
        Ok(())
    }

    fn run(&mut self) -> Result<(), String> {
        // Literals copied by the last instruction: 0, 1–3, or 4 for a run.
        let mut state = 0;
        match self.src.first().map(|&b| usize::from(b)) {
            Some(b) if b >= 22 => {
                self.ip = 1;
                self.literals(b - 17)?;
                state = 4;
            }
            Some(b) if b >= 18 => {
                self.ip = 1;
                self.literals(b - 17)?;
                state = b - 17;
            }
            _ => {}
        }
        loop {
            let inst = self.byte()?;
            let (distance, len, next) = if inst >= 0x40 {
                let h = self.byte()?;
                ((h << 3) + ((inst >> 2) & 7) + 1, (inst >> 5) + 1, inst & 3)
            } else if inst >= 0x20 {
                let len = match inst & 0x1f {
                    0 => self.long_len(31)?,
                    l => l,
                } + 2;
                let v = self.le16()?;
                ((v >> 2) + 1, len, v & 3)
            } else if inst >= 0x10 {
                let len = match inst & 7 {
                    0 => self.long_len(7)?,
                    l => l,
                } + 2;
                let v = self.le16()?;
                let d = ((inst & 8) << 11) + (v >> 2);
                if d == 0 {
                    if len != 3 {
                        return Err("lzo: a malformed end marker".into());
                    }
                    return Ok(());
                }
                (d + 16384, len, v & 3)
            } else if state == 0 {
                let n = match inst {
                    0 => self.long_len(15)?,
                    l => l,
                } + 3;
                self.literals(n)?;
                state = 4;
                continue;
            } else if state < 4 {
                let h = self.byte()?;
                ((inst >> 2) + (h << 2) + 1, 2, inst & 3)
            } else {
                let h = self.byte()?;
                ((inst >> 2) + (h << 2) + 2049, 3, inst & 3)
            };
            self.copy(distance, len)?;
            self.literals(next)?;
            state = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decompress;

    /// Pages compressed by lzokay-native's LZO1X compressor decompress to
    /// themselves.
    #[test]
    fn round_trips_with_an_independent_compressor() {
        let text: Vec<u8> = b"struct task_struct init_task; swapper/0 kworker/0:1 "
            .iter()
            .cycle()
            .take(4096)
            .copied()
            .collect();
        let mut noise = vec![0u8; 4096];
        let mut x = 0x2545_f491_u32;
        for b in &mut noise {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let mut mixed = noise.clone();
        mixed[1000..3000].copy_from_slice(&text[..2000]);
        let long_runs: Vec<u8> = (0..4096).map(|i| (i / 700) as u8).collect();
        for page in [
            vec![0u8; 4096],
            text,
            noise,
            mixed,
            long_runs,
            b"abc".to_vec(),
        ] {
            let z = lzokay_native::compress(&page).expect("compress");
            assert_eq!(decompress(&z, page.len()).as_deref(), Ok(&page[..]));
            // One byte short of room, and every cut of the stream: errors.
            if !page.is_empty() {
                assert!(decompress(&z, page.len() - 1).is_err());
            }
            for cut in 0..z.len() {
                assert!(decompress(&z[..cut], page.len()).is_err(), "cut at {cut}");
            }
        }
    }

    /// Back-references before the start of the output: these panicked in
    /// lzokay-native's decoder (the `dump_flattened` fuzz target found one).
    #[test]
    fn references_before_the_page_are_errors() {
        for raw in [
            &b"\x01abcd\x00\x00"[..],
            b"\x01abcd\x04\xff",
            b"\x00\x00\x00\x00\x40\xff",
            b"\x02ab\x20\xff\xff",
            b"\x40\x00",
            b"",
        ] {
            assert!(decompress(raw, 4096).is_err(), "{raw:?}");
        }
        // The end marker alone is an empty page (the caller wants a whole one).
        assert_eq!(decompress(b"\x11\x00\x00", 4096), Ok(Vec::new()));
    }
}
