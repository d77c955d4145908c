namespace YoloSpp.Platform;

/// <summary>The memory layout a network's CPU inference computes in (<see cref="ConvLayout"/>).</summary>
public enum LayoutChoice
{
    /// <summary>Channels-last where every convolution has at least 32 filters (<see cref="ConvLayout.PrefersChannelsLast"/>)
    /// and the convolution guard finds the channels-last kernels right; contiguous otherwise.</summary>
    Auto,
    /// <summary>Channels-last (NHWC strides) whenever the convolution guard finds its kernels right.</summary>
    ChannelsLast,
    /// <summary>Always contiguous (NCHW).</summary>
    Contiguous,
}

/// <summary>
/// The layout policy of the process: whether a network's CPU inference computes channels-last (NHWC strides, same
/// shapes and values), so that oneDNN convolves without reordering every activation into its blocked layout and back.
/// It pays on wide networks (yolov3-spp at 512², 2-core Xeon with AVX-512: training step −7 %, inference −10 %) and
/// costs on narrow ones (libtorch's channels-last BatchNorm backward is slow at 4–16 channels). The environment
/// variable <c>YOLOSPP_CHANNELS_LAST</c> (auto, on, off) sets the default; a model is given its choice when built.
/// </summary>
public static class ConvLayout
{
    /// <summary>The process default: <c>YOLOSPP_CHANNELS_LAST</c> = auto (or unset), on or off, read at each call;
    /// another value throws, naming the variable.</summary>
    public static LayoutChoice Default => Parse(Environment.GetEnvironmentVariable("YOLOSPP_CHANNELS_LAST"));

    /// <summary>The rule of <see cref="LayoutChoice.Auto"/>: every convolution has at least 32 filters.</summary>
    public static bool PrefersChannelsLast(IEnumerable<ConvConfig> configs)
    {
        var list = configs.ToArray();
        return list.Length > 0 && list.All(c => c.OutChannels >= 32);
    }

    /// <summary>Whether a network with these convolutions computes channels-last under <paramref name="choice"/>:
    /// channels-last always needs the convolution guard's check of its kernels on this CPU.</summary>
    public static bool UsesChannelsLast(LayoutChoice choice, IReadOnlyList<ConvConfig> convs) => choice switch
    {
        LayoutChoice.Contiguous => false,
        LayoutChoice.ChannelsLast => ConvGuard.CheckChannelsLast(convs),
        _ => PrefersChannelsLast(convs) && ConvGuard.CheckChannelsLast(convs),
    };

    internal static LayoutChoice Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => LayoutChoice.Auto,
        "on" or "1" or "true" => LayoutChoice.ChannelsLast,
        "off" or "0" or "false" => LayoutChoice.Contiguous,
        var v => throw new ArgumentException($"YOLOSPP_CHANNELS_LAST={v}: expected auto, on or off"),
    };
}
