namespace YoloSpp.Data;

/// <summary>OpenCV's 8-bit RGB ↔ HSV conversions (COLOR_BGR2HSV / COLOR_HSV2BGR): H = hue / 2 in [0, 180), S and V in [0, 255].</summary>
static class Hsv
{
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
