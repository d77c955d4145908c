
namespace YoloSpp.Data;

/// <summary>OpenCV's 8-bit RGB ↔ HSV conversions (COLOR_BGR2HSV / COLOR_HSV2BGR): H = hue / 2 in [0, 180), S and V in [0, 255].</summary>
internal static class Hsv
{
    // per hue byte: the sector floor(h/30) mod 6 and its fraction, exactly as ToRgb computes them
    static readonly int[] Sector = Enumerable.Range(0, 256).Select(h8 => (int)Math.Floor(h8 * 2.0 / 60.0) % 6).ToArray();
    static readonly double[] Fraction = Enumerable.Range(0, 256).Select(h8 => { double h = h8 * 2.0 / 60.0; return h - Math.Floor(h); }).ToArray();
    static readonly double[] Saturation = Enumerable.Range(0, 256).Select(s8 => s8 / 255.0).ToArray();

    /// <summary>
    /// augment_hsv's pixel loop over packed RGB bytes, in place: RGB → HSV, the three lookup tables, HSV → RGB. The
    /// same bytes as <see cref="FromRgb"/>, the tables and <see cref="ToRgb"/> per pixel, with the per-hue and
    /// per-saturation terms looked up instead of recomputed.
    /// </summary>
    public static void Apply(byte[] rgb, byte[] lutH, byte[] lutS, byte[] lutV)
    {
        if (lutH.Length < 256 || lutS.Length < 256 || lutV.Length < 256) throw new ArgumentException("lookup tables need 256 entries");
        for (int i = 0; i + 2 < rgb.Length; i += 3)
        {
            int r = rgb[i], g = rgb[i + 1], b = rgb[i + 2];
            int v = Math.Max(r, Math.Max(g, b)), diff = v - Math.Min(r, Math.Min(g, b));
            int sat = (diff * SDiv[v] + (1 << 11)) >> 12;
            int h = v == r ? g - b : v == g ? b - r + 2 * diff : r - g + 4 * diff;
            h = (h * HDiv[diff] + (1 << 11)) >> 12;
            if (h < 0) h += 180;
            int h2 = lutH[h];
            double s = Saturation[lutS[sat]], vv = lutV[v], f = Fraction[h2];
            double p = vv * (1 - s), q = vv * (1 - s * f), t = vv * (1 - s * (1 - f));
            switch (Sector[h2])
            {
                case 0: rgb[i] = B(vv); rgb[i + 1] = B(t); rgb[i + 2] = B(p); break;
                case 1: rgb[i] = B(q); rgb[i + 1] = B(vv); rgb[i + 2] = B(p); break;
                case 2: rgb[i] = B(p); rgb[i + 1] = B(vv); rgb[i + 2] = B(t); break;
                case 3: rgb[i] = B(p); rgb[i + 1] = B(q); rgb[i + 2] = B(vv); break;
                case 4: rgb[i] = B(t); rgb[i + 1] = B(p); rgb[i + 2] = B(vv); break;
                default: rgb[i] = B(vv); rgb[i + 1] = B(p); rgb[i + 2] = B(q); break;
            }
        }
    }

    // OpenCV's fixed-point division tables for 8-bit RGB2HSV (hsv_shift = 12): s = diff·(255·2¹²/v), h = ·(180·2¹²/6diff)
    static readonly int[] SDiv = Enumerable.Range(0, 256).Select(i => i == 0 ? 0 : (int)Math.Round(255.0 * 4096 / i)).ToArray();
    static readonly int[] HDiv = Enumerable.Range(0, 256).Select(i => i == 0 ? 0 : (int)Math.Round(180.0 * 4096 / (6.0 * i))).ToArray();

    /// <summary>cv2 RGB→HSV for 8-bit images, with OpenCV's integer arithmetic (RGB2HSV_b): the same bytes, and fast.</summary>
    public static (byte H, byte S, byte V) FromRgb(int r, int g, int b)
    {
        int v = Math.Max(r, Math.Max(g, b)), vmin = Math.Min(r, Math.Min(g, b)), diff = v - vmin;
        int s = (diff * SDiv[v] + (1 << 11)) >> 12;
        int h = v == r ? g - b : v == g ? b - r + 2 * diff : r - g + 4 * diff;
        h = (h * HDiv[diff] + (1 << 11)) >> 12;
        if (h < 0) h += 180;
        return ((byte)h, (byte)s, (byte)v);
    }

    /// <summary>cv2 HSV→RGB for 8-bit images (H in [0, 180)).</summary>
    public static (byte R, byte G, byte B) ToRgb(byte h8, byte s8, byte v8)
    {
        double h = h8 * 2.0 / 60.0, s = s8 / 255.0, v = v8;
        int i = (int)Math.Floor(h) % 6;
        double f = h - Math.Floor(h);
        double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
        var (r, g, b) = i switch
        {
            0 => (v, t, p),
            1 => (q, v, p),
            2 => (p, v, t),
            3 => (p, q, v),
            4 => (t, p, v),
            _ => (v, p, q),
        };
        return (B(r), B(g), B(b));
    }

    static byte B(double x) => (byte)Math.Clamp((int)Math.Round(x), 0, 255);
}
