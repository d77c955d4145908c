
namespace YoloSpp.Data;

/// <summary>
/// OpenCV's cv2.resize for interleaved uint8 images, as the reference's load_image and letterbox call it: the same
/// sample positions, weights and fixed-point arithmetic (INTER_LINEAR's 11-bit coefficients; INTER_AREA's exact
/// averaging for integer factors and its weighted cells otherwise), so the pixels equal OpenCV's within 1 (the
/// SIMD and scalar paths of OpenCV itself differ by that much).
/// </summary>
internal static class CvResize
{
    const int CoefBits = 11, CoefScale = 1 << CoefBits;
    const double DblEpsilon = 2.220446049250313e-16; // C's DBL_EPSILON (not .NET's double.Epsilon)

    /// <summary>cv2.INTER_LINEAR (area = false) or cv2.INTER_AREA (area = true) from w0×h0 to w×h, <paramref name="cn"/> channels.</summary>
    public static byte[] Resize(byte[] src, int w0, int h0, int w, int h, bool area, int cn = 3)
    {
        if (w <= 0 || h <= 0) throw new ArgumentException($"resize to {w}x{h}: sizes must be positive");
        if (w == w0 && h == h0) return (byte[])src.Clone();
        double scaleX = (double)w0 / w, scaleY = (double)h0 / h;
        if (area && scaleX >= 1 && scaleY >= 1)
        {
            int ix = (int)Math.Round(scaleX), iy = (int)Math.Round(scaleY);
            return Math.Abs(scaleX - ix) < DblEpsilon && Math.Abs(scaleY - iy) < DblEpsilon
                ? AreaFast(src, w0, h0, w, h, ix, iy, cn)
                : Area(src, w0, h0, w, h, scaleX, scaleY, cn);
        }
        return Linear(src, w0, h0, w, h, scaleX, scaleY, area, cn);
    }

    /// <summary>Source index and the fixed-point weights of the two taps, per destination index (resizeGeneric's tables).</summary>
    static (int[] Ofs, short[] A0, short[] A1) Taps(int ssize, int dsize, double scale, bool areaMode, bool clampFraction)
    {
        var ofs = new int[dsize];
        var a0 = new short[dsize];
        var a1 = new short[dsize];
        double inv = 1.0 / scale;
        for (int d = 0; d < dsize; d++)
        {
            int s;
            float f;
            if (!areaMode)
            {
                f = (float)((d + 0.5) * scale - 0.5);
                s = (int)Math.Floor(f);
                f -= s;
            }
            else
            {
                s = (int)Math.Floor(d * scale);
                f = (float)((d + 1) - (s + 1) * inv);
                f = f <= 0 ? 0f : f - (float)Math.Floor(f);
            }
            if (clampFraction)
            {
                if (s < 0) { f = 0; s = 0; }
                if (s >= ssize - 1) { f = 0; s = ssize - 1; }
            }
            ofs[d] = s;
            a0[d] = SatShort((1f - f) * CoefScale);
            a1[d] = SatShort(f * CoefScale);
        }
        return (ofs, a0, a1);
    }

    static short SatShort(float v) => (short)Math.Clamp((int)Math.Round(v, MidpointRounding.ToEven), short.MinValue, short.MaxValue);

    static byte[] Linear(byte[] src, int w0, int h0, int w, int h, double scaleX, double scaleY, bool areaMode, int cn)
    {
        var (xo, xa0, xa1) = Taps(w0, w, scaleX, areaMode, clampFraction: true);
        // rows are clipped to the image instead (the invoker's clip of sy and sy + 1)
        var (yo, yb0, yb1) = Taps(h0, h, scaleY, areaMode, clampFraction: false);
        var dst = new byte[w * h * cn];
        var row0 = new int[w * cn];
        var row1 = new int[w * cn];
        int cached0 = int.MinValue, cached1 = int.MinValue;
        for (int dy = 0; dy < h; dy++)
        {
            int sy0 = Math.Clamp(yo[dy], 0, h0 - 1), sy1 = Math.Clamp(yo[dy] + 1, 0, h0 - 1);
            if (sy0 != cached0) { HRow(src, w0, cn, sy0, xo, xa0, xa1, row0); cached0 = sy0; }
            if (sy1 != cached1) { HRow(src, w0, cn, sy1, xo, xa0, xa1, row1); cached1 = sy1; }
            int b0 = yb0[dy], b1 = yb1[dy];
            int o = dy * w * cn;
            for (int i = 0; i < w * cn; i++)
            {
                // VResizeLinearVec_32s8u: ((b0 · (r0 >> 4)) >> 16) + ((b1 · (r1 >> 4)) >> 16), + 2, >> 2
                int v = ((b0 * (row0[i] >> 4)) >> 16) + ((b1 * (row1[i] >> 4)) >> 16);
                dst[o + i] = (byte)Math.Clamp((v + 2) >> 2, 0, 255);
            }
        }
        return dst;
    }

    static void HRow(byte[] src, int w0, int cn, int sy, int[] xo, short[] a0, short[] a1, int[] row)
    {
        int rowStart = sy * w0 * cn;
        for (int dx = 0; dx < xo.Length; dx++)
        {
            int s = xo[dx], s1 = Math.Min(s + 1, w0 - 1);
            for (int c = 0; c < cn; c++)
                row[dx * cn + c] = src[rowStart + s * cn + c] * a0[dx] + src[rowStart + s1 * cn + c] * a1[dx];
        }
    }

    /// <summary>INTER_AREA for integer factors: the mean of each ix×iy block (resizeAreaFast: 2×2 blocks as its
    /// vector path, (sum + 2) >> 2; other blocks sum · (1/area) in float, rounded half to even).</summary>
    static byte[] AreaFast(byte[] src, int w0, int h0, int w, int h, int ix, int iy, int cn)
    {
        var dst = new byte[w * h * cn];
        float scale = 1f / (ix * iy);
        for (int dy = 0; dy < h; dy++)
            for (int dx = 0; dx < w; dx++)
                for (int c = 0; c < cn; c++)
                {
                    int sum = 0;
                    for (int y = dy * iy; y < dy * iy + iy; y++)
                        for (int x = dx * ix; x < dx * ix + ix; x++)
                            sum += src[(y * w0 + x) * cn + c];
                    dst[(dy * w + dx) * cn + c] = ix == 2 && iy == 2
                        ? (byte)((sum + 2) >> 2)
                        : RoundByte(sum * scale);
                }
        return dst;
    }

    static byte RoundByte(float v) => (byte)Math.Clamp((int)MathF.Round(v, MidpointRounding.ToEven), 0, 255);

    /// <summary>The cells of computeResizeAreaTab: (destination, source, weight) for one axis, in its order.</summary>
    static List<(int D, int S, float A)> AreaTab(int ssize, int dsize, double scale)
    {
        var tab = new List<(int, int, float)>();
        for (int d = 0; d < dsize; d++)
        {
            double f1 = d * scale, f2 = f1 + scale, cell = Math.Min(scale, ssize - f1);
            int s1 = (int)Math.Ceiling(f1), s2 = (int)Math.Floor(f2);
            s2 = Math.Min(s2, ssize - 1);
            s1 = Math.Min(s1, s2);
            if (s1 - f1 > 1e-3) tab.Add((d, s1 - 1, (float)((s1 - f1) / cell)));
            for (int s = s1; s < s2; s++) tab.Add((d, s, (float)(1.0 / cell)));
            if (f2 - s2 > 1e-3) tab.Add((d, s2, (float)(Math.Min(Math.Min(f2 - s2, 1.0), cell) / cell)));
        }
        return tab;
    }

    /// <summary>INTER_AREA for other shrink factors (ResizeArea_Invoker): each source pixel weighted by the share of
    /// the destination cell it covers, accumulated in float in OpenCV's order, rounded half to even.</summary>
    static byte[] Area(byte[] src, int w0, int h0, int w, int h, double scaleX, double scaleY, int cn)
    {
        var xt = AreaTab(w0, w, scaleX);
        var yt = AreaTab(h0, h, scaleY);
        var dst = new byte[w * h * cn];
        var buf = new float[w * cn];
        var sum = new float[w * cn];
        int prev = -1;
        foreach (var (dy, sy, beta) in yt)
        {
            Array.Clear(buf);
            int rs = sy * w0 * cn;
            foreach (var (dx, sx, alpha) in xt)
                for (int c = 0; c < cn; c++)
                    buf[dx * cn + c] += src[rs + sx * cn + c] * alpha;
            if (dy != prev)
            {
                if (prev >= 0) Flush(sum, dst, prev * w * cn);
                for (int i = 0; i < buf.Length; i++) sum[i] = beta * buf[i];
                prev = dy;
            }
            else
                for (int i = 0; i < buf.Length; i++) sum[i] += beta * buf[i];
        }
        Flush(sum, dst, prev * w * cn);
        return dst;
    }

    static void Flush(float[] sum, byte[] dst, int offset)
    {
        for (int i = 0; i < sum.Length; i++) dst[offset + i] = RoundByte(sum[i]);
    }
}
