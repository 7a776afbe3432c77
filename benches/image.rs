//! Image decoding cost: `cargo bench --bench image`.
//!
//! Builds the worst image an upload may carry (4096×4096 RGBA at 8 bits a
//! channel, 64 MiB decoded, compressible enough to fit in 5 MB), then runs
//! the upload pipeline on it in a fresh child process, alone and two at
//! once, and prints the time and the child's peak memory (VmHWM). Also
//! prints how fast a 16-bit canvas over the budget is refused.

use std::io::Cursor;
use std::process::Command;
use std::time::Instant;

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use questline::images::process::{process, MAX_DECODED_BYTES, MAX_SIDE, MAX_UPLOAD_BYTES};

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The largest canvas an upload may carry, as close under the 5 MB upload
/// limit as a simple pattern gets: flat 64-pixel blocks with scattered
/// noise, the noise thinned until the PNG fits.
fn worst_allowed() -> Vec<u8> {
    for every in [3u32, 5, 8, 13, 21, 34, 55, 89, u32::MAX] {
        let img = RgbaImage::from_fn(MAX_SIDE, MAX_SIDE, |x, y| {
            let h = x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503);
            if every != u32::MAX && h % every == 0 {
                Rgba([(h >> 8) as u8, (h >> 16) as u8, (h >> 24) as u8, 255])
            } else {
                Rgba([((x / 64) * 4) as u8, ((y / 64) * 4) as u8, (((x / 64) ^ (y / 64)) * 4) as u8, 255])
            }
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(img).write_to(&mut out, ImageFormat::Png).unwrap();
        if out.get_ref().len() <= MAX_UPLOAD_BYTES {
            return out.into_inner();
        }
    }
    unreachable!("flat blocks fit")
}

fn child(path: &str, copies: usize) {
    let data = std::fs::read(path).unwrap();
    let before = peak_kib();
    let started = Instant::now();
    let handles: Vec<_> = (0..copies)
        .map(|_| {
            let data = data.clone();
            std::thread::spawn(move || process(&data).map(|p| (p.width, p.height)))
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect("the worst allowed image is accepted");
    }
    println!("{} {} {}", started.elapsed().as_millis(), before, peak_kib());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], args[i + 2].parse().unwrap());
        return;
    }
    let data = worst_allowed();
    assert!(data.len() <= MAX_UPLOAD_BYTES, "the test image fits in an upload ({} bytes)", data.len());
    let path = std::env::temp_dir().join(format!("questline-worst-{}.png", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    println!(
        "worst allowed image: {MAX_SIDE}x{MAX_SIDE} RGBA8, {:.1} MB file, {} MiB decoded (budget {} MiB)",
        data.len() as f64 / 1e6,
        u64::from(MAX_SIDE) * u64::from(MAX_SIDE) * 4 / (1024 * 1024),
        MAX_DECODED_BYTES / (1024 * 1024)
    );
    for copies in [1, 2] {
        let out = Command::new(&args[0])
            .args(["--child", path.to_str().unwrap(), &copies.to_string()])
            .output()
            .expect("the child runs");
        let line = String::from_utf8_lossy(&out.stdout);
        let v: Vec<u64> = line.split_whitespace().filter_map(|s| s.parse().ok()).collect();
        if v.len() == 3 {
            println!(
                "  {copies} at once in one process: {} ms, peak memory {} MiB (process before: {} MiB)",
                v[0],
                v[2] / 1024,
                v[1] / 1024
            );
        } else {
            println!("  {copies} at once: child failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let _ = std::fs::remove_file(&path);

    // Over the budget: refused from the header, before any pixel is decoded.
    let img = DynamicImage::new_rgba16(MAX_SIDE, MAX_SIDE);
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    let bytes = out.into_inner();
    let started = Instant::now();
    let err = process(&bytes).unwrap_err();
    println!(
        "16-bit 4096x4096 ({:.2} MB file): refused in {:.2} ms: {err}",
        bytes.len() as f64 / 1e6,
        started.elapsed().as_secs_f64() * 1000.0
    );
    println!("the server runs at most {} decodes at once", questline::images::process::MAX_CONCURRENT_DECODES);
}
