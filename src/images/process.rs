//! Turning untrusted bytes into a clean image and its thumbnail.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

/// The largest upload accepted, in bytes (5 MB).
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// Larger dimensions are refused before decoding: a small file can declare a
/// huge canvas (a decompression bomb).
pub const MAX_SIDE: u32 = 4096;
/// The decoded picture may take at most this many bytes (width × height ×
/// bytes per pixel): a 4096×4096 RGBA image with 8 bits a channel fits, the
/// same canvas at 16 bits a channel (a few hundred KB of PNG that would
/// decode to 128 MiB) does not.
pub const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;
/// Memory the decoder may allocate: the picture plus the decoder's own
/// buffers.
const MAX_ALLOC: u64 = MAX_DECODED_BYTES + 16 * 1024 * 1024;
/// Decodes running at once in this process; more wait for a slot, so a
/// burst of uploads costs time, not memory.
pub const MAX_CONCURRENT_DECODES: usize = 2;
/// How long an upload waits for a decoding slot before it is told to retry.
const DECODE_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

static DECODE_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_DECODES);
/// Thumbnails fit in this square.
pub const THUMB_SIDE: u32 = 128;

/// Why an upload was refused, worded for the person who sent it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("The image is larger than 5 MB.")]
    TooLarge,
    #[error("The file is empty.")]
    Empty,
    #[error("That file is not an image Questline accepts (PNG, JPEG, GIF or WebP).")]
    NotAnImage,
    #[error("The image is larger than {MAX_SIDE}×{MAX_SIDE} pixels.")]
    TooManyPixels,
    #[error("The image is too large to process: at most 4096×4096 pixels with 8 bits a channel.")]
    TooMuchMemory,
    #[error("Too many images are being processed right now. Please try again in a minute.")]
    Busy,
    #[error("The image could not be read: it may be damaged.")]
    Corrupt,
}

/// A re-encoded image ready to store.
#[derive(Debug, Clone)]
pub struct Processed {
    pub bytes: Vec<u8>,
    pub thumb: Vec<u8>,
    pub content_type: &'static str,
    pub extension: &'static str,
    pub width: u32,
    pub height: u32,
    /// SHA-256 of `bytes`, lower-case hex: the blob's identity.
    pub sha256: String,
}

/// Decodes `data` (whatever its name claims), refuses anything but PNG, JPEG,
/// GIF and WebP within the size and pixel limits, and re-encodes it: JPEG
/// stays JPEG, the rest become PNG (only the first frame of an animation).
/// CPU-bound: call it off the async workers.
pub fn process(data: &[u8]) -> Result<Processed, ImageError> {
    if data.is_empty() {
        return Err(ImageError::Empty);
    }
    if data.len() > MAX_UPLOAD_BYTES {
        return Err(ImageError::TooLarge);
    }
    let reader = ImageReader::new(Cursor::new(data)).with_guessed_format().map_err(|_| ImageError::NotAnImage)?;
    let format = match reader.format() {
        Some(f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP)) => f,
        _ => return Err(ImageError::NotAnImage),
    };
    let decoder = reader.into_decoder().map_err(|_| ImageError::Corrupt)?;
    let (width, height) = image::ImageDecoder::dimensions(&decoder);
    let bytes_per_pixel = u64::from(image::ImageDecoder::color_type(&decoder).bytes_per_pixel());
    drop(decoder);
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt);
    }
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(ImageError::TooManyPixels);
    }
    if u64::from(width) * u64::from(height) * bytes_per_pixel > MAX_DECODED_BYTES {
        return Err(ImageError::TooMuchMemory);
    }
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooManyPixels,
        _ => ImageError::Corrupt,
    })?;
    let (out_format, content_type, extension) = match format {
        ImageFormat::Jpeg => (ImageFormat::Jpeg, "image/jpeg", "jpg"),
        _ => (ImageFormat::Png, "image/png", "png"),
    };
    let bytes = encode(&img, out_format)?;
    let thumb = encode(&img.thumbnail(THUMB_SIDE, THUMB_SIDE), out_format)?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(Processed { bytes, thumb, content_type, extension, width: img.width(), height: img.height(), sha256 })
}

/// [`process`] on the blocking pool, at most [`MAX_CONCURRENT_DECODES`] at a
/// time in this process.
pub async fn process_bounded(data: Vec<u8>) -> Result<Processed, ImageError> {
    let permit = tokio::time::timeout(DECODE_QUEUE_WAIT, DECODE_SLOTS.acquire())
        .await
        .map_err(|_| ImageError::Busy)?
        .map_err(|_| ImageError::Busy)?;
    let out = actix_web::web::block(move || process(&data)).await.map_err(|_| ImageError::Corrupt)?;
    drop(permit);
    out
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, ImageError> {
    let mut out = Cursor::new(Vec::new());
    // JPEG has no alpha channel; PNG keeps whatever the source had.
    let result = match format {
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(img.to_rgb8()).write_to(&mut out, format),
        _ => img.write_to(&mut out, format),
    };
    result.map_err(|_| ImageError::Corrupt)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = DynamicImage::new_rgb8(width, height);
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_png_is_reencoded_with_a_thumbnail_no_larger_than_the_box() {
        let p = process(&png(300, 150)).unwrap();
        assert_eq!((p.content_type, p.width, p.height), ("image/png", 300, 150));
        let thumb = image::load_from_memory(&p.thumb).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (128, 64));
        assert_eq!(p.sha256, hex::encode(Sha256::digest(&p.bytes)));
    }

    #[test]
    fn text_named_like_an_image_is_refused() {
        assert_eq!(process(b"<svg onload=alert(1)>").unwrap_err(), ImageError::NotAnImage);
        assert_eq!(process(b"").unwrap_err(), ImageError::Empty);
    }

    /// A PNG that declares a canvas (sides, bit depth, colour type) and
    /// holds no pixels: what a decompression bomb looks like to a decoder
    /// that trusts its header.
    pub(crate) fn png_header(side: u32, depth: png::BitDepth, color: png::ColorType) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_depth(depth);
        encoder.set_color(color);
        let mut writer = encoder.write_header().unwrap();
        // A first data chunk (a few zero bytes, deflated), as a bomb has.
        writer.write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01]).unwrap();
        drop(writer);
        out
    }

    #[test]
    fn a_huge_declared_canvas_is_refused_before_decoding() {
        let data = png_header(100_000, png::BitDepth::Eight, png::ColorType::Rgb);
        assert_eq!(process(&data).unwrap_err(), ImageError::TooManyPixels);
    }

    #[test]
    fn a_sixteen_bit_canvas_over_the_memory_budget_is_refused_before_decoding() {
        // 4096×4096 RGBA at 16 bits a channel: allowed sides, but 128 MiB
        // once decoded. Refused from the header.
        let data = png_header(4096, png::BitDepth::Sixteen, png::ColorType::Rgba);
        assert_eq!(process(&data).unwrap_err(), ImageError::TooMuchMemory);
        // The same sides at 8 bits a channel pass the budget check (and then
        // fail as damaged, having no pixel data).
        let data = png_header(4096, png::BitDepth::Eight, png::ColorType::Rgba);
        assert_eq!(process(&data).unwrap_err(), ImageError::Corrupt);
    }

    #[test]
    fn a_truncated_image_is_reported_as_damaged() {
        let data = png(64, 64);
        assert_eq!(process(&data[..data.len() / 2]).unwrap_err(), ImageError::Corrupt);
    }

    #[test]
    fn jpeg_metadata_does_not_survive() {
        let img = DynamicImage::new_rgb8(20, 20);
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Jpeg).unwrap();
        let mut data = out.into_inner();
        // Splice an EXIF-like APP1 segment after SOI.
        let app1 = b"\xFF\xE1\x00\x10Exif\x00\x00SECRETGPS";
        data.splice(2..2, app1.iter().copied());
        let p = process(&data).unwrap();
        assert_eq!(p.content_type, "image/jpeg");
        assert!(!p.bytes.windows(9).any(|w| w == b"SECRETGPS"));
    }
}
