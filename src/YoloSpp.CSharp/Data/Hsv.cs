namespace YoloSpp.Data;

/// <summary>OpenCV's 8-bit RGB ↔ HSV conversions (COLOR_BGR2HSV / COLOR_HSV2BGR): H = hue / 2 in [0, 180), S and V in [0, 255].</summary>
static class Hsv
{
    /// <summary>cv2 RGB→HSV for 8-bit images: V = max, S = 255·(V − min)/V, H = 30·(sector + offset)/60 rounded.</summary>
    public static (byte H, byte S, byte V) FromRgb(byte r, byte g, byte b)
    {
        int v = Math.Max(r, Math.Max(g, b)), mn = Math.Min(r, Math.Min(g, b)), d = v - mn;
        int s = v == 0 ? 0 : (int)Math.Round(255.0 * d / v);
        double h;
        if (d == 0) h = 0;
        else if (v == r) h = 60.0 * (g - b) / d;
        else if (v == g) h = 120.0 + 60.0 * (b - r) / d;
        else h = 240.0 + 60.0 * (r - g) / d;
        if (h < 0) h += 360;
        int hh = (int)Math.Round(h / 2);
        if (hh >= 180) hh -= 180;
        return ((byte)hh, (byte)s, (byte)v);
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
