//! `BodyDecoder::decode` on arbitrary bytes, in steps of a chosen size.
//!
//! Input: a 7-byte header, then the body bytes.
//!   0: kind (`% 4`: 0 Length, 1-2 Chunked, 3 UntilClose)
//!   1: max step (0 means unbounded)
//!   2: flags (bit 0: call `decode(rest, 0)` before every step; bit 1: Length is `u64::MAX`)
//!   3: trailer byte limit / 4, 4: trailer field limit (`% 8`)
//!   5-6: Length (little endian)
//!
//! Checks: `consumed <= input.len()`, `data` inside `0..consumed`, a step that takes and gives
//! nothing without completing happens only when no input is left (and repeats then), an error
//! repeats on the same bytes, total data <= input, `max == 0` yields no data, and stepping
//! decodes exactly what one unbounded pass does. Length and close-delimited bodies must
//! deliver exactly the expected bytes.
#![no_main]

use dugong::proto::{BodyDecoder, BodyKind, Decoded, ProtocolError};
use libfuzzer_sys::fuzz_target;

/// Body bytes, bytes consumed, whether it completed, and the error that stopped it.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    data: Vec<u8>,
    consumed: usize,
    complete: bool,
    error: Option<ProtocolError>,
}

fn check_step(step: &Decoded, input: &[u8], max: usize) {
    assert!(
        step.consumed <= input.len(),
        "{step:?} of {} bytes",
        input.len()
    );
    assert!(step.data.start <= step.data.end, "{step:?}");
    assert!(step.data.end <= step.consumed, "{step:?}");
    assert!(step.data.len() <= max, "{step:?} with max {max}");
}

fn run(d: &mut BodyDecoder, input: &[u8], max: usize, probe_zero: bool) -> Outcome {
    let mut out = Outcome {
        data: Vec::new(),
        consumed: 0,
        complete: false,
        error: None,
    };
    loop {
        let rest = &input[out.consumed..];
        if probe_zero {
            // `max == 0` takes framing only: no data, possibly completing the body.
            match d.decode(rest, 0) {
                Ok(step) => {
                    check_step(&step, rest, 0);
                    out.consumed += step.consumed;
                    if step.complete {
                        out.complete = true;
                        break;
                    }
                }
                Err(e) => {
                    assert_eq!(d.decode(rest, 0), Err(e), "error does not repeat");
                    out.error = Some(e);
                    break;
                }
            }
        }
        let rest = &input[out.consumed..];
        let step = match d.decode(rest, max) {
            Ok(step) => step,
            Err(e) => {
                assert_eq!(d.decode(rest, max), Err(e), "error does not repeat");
                out.error = Some(e);
                break;
            }
        };
        check_step(&step, rest, max);
        out.data.extend_from_slice(&rest[step.data.clone()]);
        out.consumed += step.consumed;
        if step.complete {
            out.complete = true;
            break;
        }
        if step.consumed == 0 {
            assert!(step.data.is_empty());
            // No progress must mean "needs more input".
            assert!(rest.is_empty(), "stalled with {} bytes left", rest.len());
            assert_eq!(d.decode(rest, max), Ok(step), "stall does not repeat");
            break;
        }
    }
    assert!(out.data.len() <= input.len());
    assert!(out.consumed <= input.len());
    if out.complete {
        // A finished body takes nothing more.
        let rest = &input[out.consumed..];
        let after = d.decode(rest, max).expect("decode after completion");
        assert_eq!(
            (after.consumed, after.data.len(), after.complete),
            (0, 0, true)
        );
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 7 {
        return;
    }
    let (hdr, input) = data.split_at(7);
    let flags = hdr[2];
    let length = if flags & 2 != 0 {
        u64::MAX
    } else {
        u64::from(u16::from_le_bytes([hdr[5], hdr[6]]))
    };
    let kind = match hdr[0] % 4 {
        0 => BodyKind::Length(length),
        1 | 2 => BodyKind::Chunked,
        _ => BodyKind::UntilClose,
    };
    let max = match hdr[1] {
        0 => usize::MAX,
        m => usize::from(m),
    };
    let max_trailer = usize::from(hdr[3]) * 4;
    let max_fields = usize::from(hdr[4] % 8);
    let new = || BodyDecoder::new(kind, max_trailer, max_fields);

    let Some(mut stepped) = new() else {
        assert_eq!(kind, BodyKind::Length(0));
        return;
    };
    let got = run(&mut stepped, input, max, flags & 1 != 0);
    let mut whole = new().expect("decoder");
    let want = run(&mut whole, input, usize::MAX, false);
    assert_eq!(
        got, want,
        "stepped (max {max}) and unbounded decoding differ"
    );

    match kind {
        BodyKind::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(input.len());
            assert_eq!(got.data, &input[..n]);
            assert_eq!(got.consumed, n);
            assert_eq!(got.complete, n as u64 == length);
            assert_eq!(got.error, None);
        }
        BodyKind::UntilClose => {
            assert_eq!(got.data, input);
            assert!(!got.complete && got.error.is_none());
            assert!(stepped.ends_at_close());
        }
        _ => {
            assert!(!stepped.ends_at_close());
            if got.complete {
                // The last chunk ends with LF; nothing after the body was taken.
                assert_eq!(input[got.consumed - 1], b'\n');
            }
        }
    }
});
