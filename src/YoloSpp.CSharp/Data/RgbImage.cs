using SkiaSharp;
using YoloSpp.Data;

namespace YoloSpp.Data;

/// <summary>
/// An 8-bit RGB image, rows of interleaved R, G, B bytes (height × width × 3). The pixel half of the reference's
/// dataset transforms; the geometry comes from the F# core (<c>YoloSpp.Data.Augment</c>, <c>Letterbox</c>).
/// </summary>
public sealed class RgbImage
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }
    /// <summary>Pixels, row-major, RGB interleaved (length Height × Width × 3).</summary>
    public byte[] Pixels { get; }

    /// <summary>An image over existing pixels (not copied).</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (pixels.Length != width * height * 3) throw new ArgumentException("pixels must hold width × height × 3 bytes");
        (Width, Height, Pixels) = (width, height, pixels);
    }

    /// <summary>An image filled with one grey level (the reference pads with 114).</summary>
    public static RgbImage Filled(int width, int height, byte value)
    {
        var p = new byte[width * height * 3];
        Array.Fill(p, value);
        return new RgbImage(width, height, p);
    }

    /// <summary>The default of <see cref="MaxPixels"/>: 178,956,970, the size at which PIL (which yolov5 reads images
    /// with) refuses an image as a decompression bomb (2 × <c>Image.MAX_IMAGE_PIXELS</c>).</summary>
    public const long DefaultMaxPixels = 178_956_970;

    /// <summary>Largest decodable RGBA buffer: width × height × 4 bytes must fit an array.</summary>
    const long PixelCeiling = int.MaxValue / 4;

    static long _maxPixels = DefaultMaxPixels;

    /// <summary>
    /// The most pixels (width × height) an image file may have; larger ones are refused from their header, before any
    /// pixel is decoded, with an error naming the file (a 30000×30000 PNG of a few hundred kB would otherwise take
    /// 3.6 GB). Process-wide, like PIL's <c>Image.MAX_IMAGE_PIXELS</c>; the runner's <c>--max-pixels</c> sets it.
    /// Default <see cref="DefaultMaxPixels"/>; at most 536,870,911 (a decoded image must fit one array).
    /// </summary>
    /// <exception cref="ArgumentException">Not in 1..536,870,911.</exception>
    public static long MaxPixels
    {
        get => Volatile.Read(ref _maxPixels);
        set
        {
            if (value < 1 || value > PixelCeiling)
                throw new ArgumentException($"--max-pixels {value} must be in 1..{PixelCeiling:N0}");
            Volatile.Write(ref _maxPixels, value);
        }
    }

    /// <summary>The size of an image file as cv2.imread gives it (EXIF orientation applied: orientations 5–8 swap
    /// width and height), read from its header only (no pixel decode).</summary>
    /// <exception cref="InvalidInputException">The file is not an image Skia can read, or has more than <see cref="MaxPixels"/> pixels.</exception>
    public static (int Width, int Height) ReadSize(string path)
    {
        var h = ImageDecode.ReadHeader(path);
        return SwapsAxes(h.Origin) ? (h.Height, h.Width) : (h.Width, h.Height);
    }

    internal static bool SwapsAxes(SKEncodedOrigin o) =>
        o is SKEncodedOrigin.LeftTop or SKEncodedOrigin.RightTop or SKEncodedOrigin.RightBottom or SKEncodedOrigin.LeftBottom;

    /// <summary>Decodes an image file to RGB (any format Skia reads: JPEG, PNG, BMP, WebP, ...) with its EXIF
    /// orientation applied, as cv2.imread does.</summary>
    /// <exception cref="InvalidInputException">The file is not a readable image, has more than <see cref="MaxPixels"/>
    /// pixels, or its data is truncated or corrupt; the message names the file.</exception>
    public static RgbImage Load(string path) => LoadNoted(path, out _);

    /// <summary><see cref="Load(string)"/>, with the note of a restored file (a JPEG without its end marker), else null.</summary>
    public static RgbImage LoadNoted(string path, out string? note)
    {
        using var decoded = ImageDecode.Decode(path);
        note = decoded.Note;
        return FromRgba(decoded.Bitmap).Oriented(decoded.Origin);
    }

    /// <summary>
    /// The image as it is meant to be seen: the stored pixels turned by an EXIF orientation (1 = as stored; 2 mirror;
    /// 3 rotate 180°; 4 flip; 5 transpose; 6 rotate 90° clockwise; 7 transverse; 8 rotate 90° counter-clockwise).
    /// </summary>
    internal RgbImage Oriented(SKEncodedOrigin origin)
    {
        if (origin is SKEncodedOrigin.TopLeft or 0) return this;
        bool swap = SwapsAxes(origin);
        int w = Width, h = Height, ow = swap ? h : w, oh = swap ? w : h;
        var dst = new byte[Pixels.Length];
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
            {
                // the stored pixel (sx, sy) that lands on (x, y)
                var (sx, sy) = origin switch
                {
                    SKEncodedOrigin.TopRight => (w - 1 - x, y),
                    SKEncodedOrigin.BottomRight => (w - 1 - x, h - 1 - y),
                    SKEncodedOrigin.BottomLeft => (x, h - 1 - y),
                    SKEncodedOrigin.LeftTop => (y, x),
                    SKEncodedOrigin.RightTop => (y, h - 1 - x),
                    SKEncodedOrigin.RightBottom => (w - 1 - y, h - 1 - x),
                    SKEncodedOrigin.LeftBottom => (w - 1 - y, x),
                    _ => (x, y),
                };
                int o = (y * ow + x) * 3, i = (sy * w + sx) * 3;
                dst[o] = Pixels[i];
                dst[o + 1] = Pixels[i + 1];
                dst[o + 2] = Pixels[i + 2];
            }
        return new RgbImage(ow, oh, dst);
    }

    /// <summary>
    /// The reference's load_image: cv2.imread (EXIF orientation applied), then r = imgSize / max(h0, w0) and, when
    /// r ≠ 1, cv2.resize to (int(w0 r), int(h0 r)) with INTER_AREA when shrinking without augmentation, else
    /// INTER_LINEAR (<see cref="CvResize"/>: OpenCV's arithmetic).
    /// </summary>
    public static RgbImage LoadResized(string path, int imgSize, bool augment, out int h0, out int w0)
    {
        var img = Load(path);
        (h0, w0) = (img.Height, img.Width);
        var ((h, w), r) = Augment.loadSize(imgSize, h0, w0).ToValueTuple();
        if (r == 1.0) return img;
        try { return new RgbImage(w, h, CvResize.Resize(img.Pixels, w0, h0, w, h, area: r < 1 && !augment)); }
        catch (ArgumentException e) { throw new InvalidInputException(path, $"cannot resize the {w0}x{h0} image to {w}x{h}: {e.Message}", e); }
    }

    static RgbImage FromRgba(SKBitmap bmp)
    {
        int w = bmp.Width, h = bmp.Height, stride = bmp.RowBytes;
        var src = bmp.GetPixelSpan();
        var dst = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
        {
            var row = src.Slice(y * stride, w * 4);
            int o = y * w * 3;
            for (int x = 0; x < w; x++, o += 3)
            {
                dst[o] = row[x * 4];
                dst[o + 1] = row[x * 4 + 1];
                dst[o + 2] = row[x * 4 + 2];
            }
        }
        return new RgbImage(w, h, dst);
    }

    /// <summary>Encodes to a file (format from the extension: .png, else JPEG quality 95). For tests and tools.</summary>
    public void Save(string path)
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bmp = new SKBitmap(info);
        var dst = bmp.GetPixelSpan();
        for (int i = 0, o = 0; i < Pixels.Length; i += 3, o += 4)
        {
            dst[o] = Pixels[i]; dst[o + 1] = Pixels[i + 1]; dst[o + 2] = Pixels[i + 2]; dst[o + 3] = 255;
        }
        var png = path.EndsWith(".png", StringComparison.OrdinalIgnoreCase);
        using var data = bmp.Encode(png ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, png ? 100 : 95);
        using var fs = File.Create(path);
        data.SaveTo(fs);
    }

    /// <summary>Copies the source rectangle of <paramref name="src"/> to (dstX, dstY) of this image (mosaic tiles, letterbox).</summary>
    public void Paste(RgbImage src, int srcX1, int srcY1, int srcX2, int srcY2, int dstX, int dstY)
    {
        int n = (srcX2 - srcX1) * 3;
        if (n <= 0) return;
        for (int y = srcY1; y < srcY2; y++)
            Buffer.BlockCopy(src.Pixels, (y * src.Width + srcX1) * 3, Pixels, ((dstY + y - srcY1) * Width + dstX) * 3, n);
    }

    /// <summary>The reference's letterbox pixels for a plan: the (already resized) image padded with 114.</summary>
    internal RgbImage Letterboxed(Letterbox.Plan plan) => Letterboxed(plan, 114);

    /// <summary>The letterbox pixels for a plan, padded with grey level <paramref name="pad"/> (the reference's predict pads with 0).</summary>
    internal RgbImage Letterboxed(Letterbox.Plan plan, byte pad)
    {
        var img = this;
        if (plan.ResizedW != Width || plan.ResizedH != Height)
            img = Resized(plan.ResizedW, plan.ResizedH);
        var outImg = Filled(plan.OutW, plan.OutH, pad);
        outImg.Paste(img, 0, 0, img.Width, img.Height, plan.Left, plan.Top);
        return outImg;
    }

    /// <summary>HWC RGB bytes → [1, 3, H, W] float in [0, 1], as the reference's img / 255.</summary>
    internal TorchSharp.torch.Tensor ToTensor()
    {
        int plane = Width * Height;
        var px = Pixels;
        var data = new float[3 * plane];
        for (int p = 0; p < plane; p++)
        {
            data[p] = px[p * 3] / 255f;
            data[plane + p] = px[p * 3 + 1] / 255f;
            data[2 * plane + p] = px[p * 3 + 2] / 255f;
        }
        return TorchSharp.torch.tensor(data, [1, 3, Height, Width]);
    }

    /// <summary>cv2.resize with INTER_LINEAR (letterbox's resize), OpenCV's arithmetic (<see cref="CvResize"/>).</summary>
    public RgbImage Resized(int width, int height) =>
        new(width, height, CvResize.Resize(Pixels, Width, Height, width, height, area: false));

    /// <summary>
    /// cv2.warpAffine(img, M[:2], (width, height), INTER_LINEAR, borderValue 114): each output pixel samples the
    /// source bilinearly at M⁻¹·(x, y); samples outside the source read the border value.
    /// </summary>
    public RgbImage WarpAffine(double[] m, int width, int height)
    {
        var inv = Augment.invertAffine(m);
        var outPx = new byte[width * height * 3];
        var src = Pixels;
        int sw = Width, sh = Height;
        for (int y = 0; y < height; y++)
        {
            double bx = inv[1] * y + inv[2], by = inv[4] * y + inv[5];
            for (int x = 0; x < width; x++)
            {
                double sx = inv[0] * x + bx, sy = inv[3] * x + by;
                int x0 = (int)Math.Floor(sx), y0 = (int)Math.Floor(sy);
                double fx = sx - x0, fy = sy - y0;
                int o = (y * width + x) * 3;
                for (int c = 0; c < 3; c++)
                {
                    double p00 = At(src, sw, sh, x0, y0, c), p10 = At(src, sw, sh, x0 + 1, y0, c);
                    double p01 = At(src, sw, sh, x0, y0 + 1, c), p11 = At(src, sw, sh, x0 + 1, y0 + 1, c);
                    double v = (p00 * (1 - fx) + p10 * fx) * (1 - fy) + (p01 * (1 - fx) + p11 * fx) * fy;
                    outPx[o + c] = (byte)Math.Clamp((int)Math.Round(v), 0, 255);
                }
            }
        }
        return new RgbImage(width, height, outPx);
    }

    static byte At(byte[] p, int w, int h, int x, int y, int c) =>
        (uint)x < (uint)w && (uint)y < (uint)h ? p[(y * w + x) * 3 + c] : (byte)114;

    /// <summary>np.fliplr: mirrors the columns, in place.</summary>
    public void FlipLeftRight()
    {
        for (int y = 0; y < Height; y++)
        {
            int row = y * Width * 3;
            for (int a = 0, b = Width - 1; a < b; a++, b--)
                for (int c = 0; c < 3; c++)
                    (Pixels[row + a * 3 + c], Pixels[row + b * 3 + c]) = (Pixels[row + b * 3 + c], Pixels[row + a * 3 + c]);
        }
    }

    /// <summary>
    /// The reference's augment_hsv, in place: to OpenCV's 8-bit HSV (H in [0, 180)), each channel through its
    /// lookup table (<c>Augment.hsvLuts</c>), back to RGB. Channel order does not matter to HSV, so RGB here equals
    /// the reference's BGR path.
    /// </summary>
    public void AugmentHsv(double gainH, double gainS, double gainV)
    {
        var (lh, ls, lv) = Augment.hsvLuts(gainH, gainS, gainV).ToValueTuple();
        Hsv.Apply(Pixels, lh, ls, lv);
    }
}
