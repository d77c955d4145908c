using SkiaSharp;

namespace YoloSpp.Data;

/// <summary>
/// Opens and decodes image files with the checks of yolov5's verify_image_label, so that no broken image is ever used
/// silently: an unreadable header, a size above <see cref="RgbImage.MaxPixels"/> (read from the header, before any
/// pixel is decoded) and a file that ends before its last row are errors naming the file. A JPEG whose only fault is
/// a missing end marker (yolov5 checks the last two bytes, <c>FF D9</c>, and re-saves such files) is decoded as if
/// the marker were there, with a note; one whose image data is cut short is refused.
/// </summary>
internal static class ImageDecode
{
    /// <summary>The checked header of an image file.</summary>
    internal sealed record Header(int Width, int Height, SKEncodedOrigin Origin, SKEncodedImageFormat Format);

    /// <summary>A decoded image (RGBA, as stored: orientation not applied) and, when it needed restoring, why.</summary>
    internal sealed record Decoded(SKBitmap Bitmap, SKEncodedOrigin Origin, string? Note) : IDisposable
    {
        public void Dispose() => Bitmap.Dispose();
    }

    static string Why(SKCodecResult r) => r switch
    {
        SKCodecResult.Unimplemented => "a format this build cannot decode",
        SKCodecResult.IncompleteInput => "the file ends inside its header",
        SKCodecResult.InvalidInput or SKCodecResult.ErrorInInput => "a corrupt header",
        _ => r.ToString(),
    };

    /// <summary>What is wrong with an image file, if anything.</summary>
    internal enum Fault
    {
        /// <summary>Usable (perhaps restored: see the note).</summary>
        None,
        /// <summary>No such file, or a header no decoder reads.</summary>
        Unreadable,
        /// <summary>More pixels than <see cref="RgbImage.MaxPixels"/>.</summary>
        TooLarge,
        /// <summary>A readable header over truncated or corrupt pixel data.</summary>
        Corrupt,
    }

    /// <summary>The outcome of checking a file: its fault and why, its stored size and orientation, and a note when it
    /// was restored.</summary>
    internal sealed record Verdict(Fault Fault, string? Reason, int Width, int Height, SKEncodedOrigin Origin, string? Note);

    /// <summary>Reads and checks the header: a readable image, positive sides, at most <see cref="RgbImage.MaxPixels"/> pixels.</summary>
    /// <exception cref="InvalidInputException">The file is missing, not an image, or too large; the message names it.</exception>
    public static Header ReadHeader(string path)
    {
        using var codec = Open(path, null, out var why) ?? throw new InvalidInputException(path, why!);
        return Check(path, codec, out var tooLarge) ?? throw new InvalidInputException(path, tooLarge!);
    }

    static SKCodec? Open(string path, byte[]? bytes, out string? why)
    {
        why = null;
        if (bytes is null && !File.Exists(path)) { why = "no such image file"; return null; }
        SKCodec? codec;
        SKCodecResult result;
        if (bytes is null) codec = SKCodec.Create(path, out result);
        // the codec owns the stream (Skia's MakeFromStream)
        else codec = SKCodec.Create(new SKMemoryStream(bytes), out result);
        if (codec is null) why = $"not a readable image ({Why(result)})";
        return codec;
    }

    static Header? Check(string path, SKCodec codec, out string? why)
    {
        why = null;
        int w = codec.Info.Width, h = codec.Info.Height;
        long pixels = (long)w * h;
        if (w <= 0 || h <= 0) why = $"empty image ({w}x{h})";
        else if (pixels > RgbImage.MaxPixels) why = TooLarge(w, h);
        return why is null ? new Header(w, h, codec.EncodedOrigin, codec.EncodedFormat) : null;
    }

    /// <summary>Why a w × h image is refused under the current <see cref="RgbImage.MaxPixels"/>.</summary>
    internal static string TooLarge(int w, int h) =>
        $"{w}x{h} image: {(long)w * h:N0} pixels, above the limit of {RgbImage.MaxPixels:N0} (raise it with --max-pixels, or RgbImage.MaxPixels, if the image is meant to be this large)";

    /// <summary>Decodes a file to RGBA after the header checks.</summary>
    /// <exception cref="InvalidInputException">The header fails its checks, or the pixel data is truncated or corrupt.</exception>
    public static Decoded Decode(string path)
    {
        var (decoded, verdict) = DecodeOrJudge(path);
        return decoded ?? throw new InvalidInputException(path, verdict.Reason!);
    }

    /// <summary>Checks a file as the dataset scan does (yolov5's verify_image_label): the header, then every pixel.</summary>
    public static Verdict Verify(string path)
    {
        var (decoded, verdict) = DecodeOrJudge(path);
        decoded?.Dispose();
        return verdict;
    }

    static (Decoded?, Verdict) DecodeOrJudge(string path)
    {
        SKEncodedImageFormat format;
        SKEncodedOrigin origin;
        SKCodecResult result;
        int w, h;
        using (var codec = Open(path, null, out var unreadable))
        {
            if (codec is null) return (null, new Verdict(Fault.Unreadable, unreadable, 0, 0, default, null));
            if (Check(path, codec, out var why) is not { } header)
                return (null, codec.Info.Width > 0 && codec.Info.Height > 0
                    ? new Verdict(Fault.TooLarge, why, codec.Info.Width, codec.Info.Height, codec.EncodedOrigin, null)
                    : new Verdict(Fault.Unreadable, why, 0, 0, default, null));
            (format, origin, w, h) = (header.Format, header.Origin, header.Width, header.Height);
            var bmp = TryPixels(codec, out result);
            if (result == SKCodecResult.Success) return (new Decoded(bmp, origin, null), new Verdict(Fault.None, null, w, h, origin, null));
            bmp.Dispose();
        }
        if (format == SKEncodedImageFormat.Jpeg && RestoreJpeg(path) is { } restored)
        {
            const string note = "JPEG without its end marker (FF D9) but with complete image data: decoded as if the marker were there, as yolov5 restores such files";
            return (new Decoded(restored, origin, note), new Verdict(Fault.None, null, w, h, origin, note));
        }
        var reason = result == SKCodecResult.IncompleteInput
            ? "truncated image: the file ends before its last pixel row (an interrupted copy or download?)"
            : $"corrupt image data ({result})";
        return (null, new Verdict(Fault.Corrupt, reason, w, h, origin, null));
    }

    static SKBitmap TryPixels(SKCodec codec, out SKCodecResult result)
    {
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var bmp = new SKBitmap(info);
        result = codec.GetPixels(info, bmp.GetPixels());
        return bmp;
    }

    /// <summary>
    /// A JPEG that lacks its end marker: decoded with the marker appended, and again with filler bytes before it. When
    /// the image data is complete the filler lies beyond the last block and every decode is the same; when the data is
    /// cut short the decoder reads the filler as image data and some decode differs. Three fillers, since one can
    /// happen to decode as the decoder's own fill (0xAA did once: a bad Huffman code makes libjpeg skip to the marker).
    /// Null when the file cannot be restored that way (a truncated file, or one that already ends with the marker).
    /// </summary>
    static SKBitmap? RestoreJpeg(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 2 || (bytes[^2] == 0xFF && bytes[^1] == 0xD9)) return null;
        byte[] marker = [0xFF, 0xD9];
        var a = DecodeBytes(path, [.. bytes, .. marker]);
        if (a is null) return null;
        foreach (var fill in new byte[] { 0x00, 0xAA, 0x55 })
        {
            using var b = DecodeBytes(path, [.. bytes, .. Enumerable.Repeat(fill, 64), .. marker]);
            if (b is null || !a.GetPixelSpan().SequenceEqual(b.GetPixelSpan())) { a.Dispose(); return null; }
        }
        return a;
    }

    static SKBitmap? DecodeBytes(string path, byte[] bytes)
    {
        using var codec = Open(path, bytes, out _);
        if (codec is null) return null;
        var bmp = TryPixels(codec, out var r);
        if (r == SKCodecResult.Success) return bmp;
        bmp.Dispose();
        return null;
    }
}
