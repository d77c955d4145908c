using System.Buffers.Binary;
using TorchSharp;
using TorchSharp.Modules;
using YoloSpp.IO;
using static TorchSharp.torch;

namespace YoloSpp.Model;

/// <summary>The header of a Darknet .weights file.</summary>
/// <param name="Major">Format major version.</param>
/// <param name="Minor">Format minor version.</param>
/// <param name="Revision">Format revision.</param>
/// <param name="Seen">Images seen in training (int64 on disk when major·10 + minor ≥ 2, else int32).</param>
public sealed record DarknetHeader(int Major, int Minor, int Revision, long Seen)
{
    /// <summary>The header the reference writes: version (0, 2, 5), seen 0.</summary>
    public static DarknetHeader Default { get; } = new(0, 2, 5, 0);

    internal bool SeenIs64 => Major * 10 + Minor >= 2;
    internal int Size => 12 + (SeenIs64 ? 8 : 4);
}

/// <summary>
/// Darknet .weights files: int32 major, minor, revision; seen; then float32 arrays per [convolutional] in module
/// order — BN bias, BN weight, running mean, running var, conv weight (OIHW) with batch_normalize, else conv bias
/// and conv weight.
/// </summary>
public static class DarknetWeights
{
    /// <summary>The cutoff of darknet53.conv.74: the backbone's first 75 modules.</summary>
    public const int Darknet53Cutoff = 75;

    static IEnumerable<(int Index, Conv2d Conv, TorchSharp.Modules.BatchNorm? Bn)> Convs(DarkNet model, int cutoff)
    {
        var modules = model.Modules;
        for (int i = 0; i < Math.Min(cutoff, modules.Count); i++)
        {
            if (modules[i] is not Sequential seq) continue;
            var children = seq.named_children().ToDictionary(c => c.name, c => c.module);
            if (!children.TryGetValue("Conv2d", out var conv)) continue;
            children.TryGetValue("BatchNorm2d", out var bn);
            yield return (i, (Conv2d)conv, (TorchSharp.Modules.BatchNorm?)bn);
        }
    }

    static IEnumerable<(string What, Tensor Tensor)> Arrays(Conv2d conv, TorchSharp.Modules.BatchNorm? bn)
    {
        if (bn is not null)
        {
            yield return ("BatchNorm2d.bias", bn.bias!);
            yield return ("BatchNorm2d.weight", bn.weight!);
            yield return ("BatchNorm2d.running_mean", bn.running_mean!);
            yield return ("BatchNorm2d.running_var", bn.running_var!);
        }
        else yield return ("Conv2d.bias", conv.bias!);
        yield return ("Conv2d.weight", conv.weight!);
    }

    /// <summary>
    /// Loads a .weights file into <paramref name="model"/>. Without <paramref name="cutoff"/> the file must hold
    /// exactly the network's convolutions; with it (e.g. 75 for darknet53.conv.74, which is also picked from the
    /// file name) only modules before the cutoff are read and extra bytes are allowed.
    /// </summary>
    /// <exception cref="InvalidInputException">The file ends early (naming the layer) or has surplus bytes.</exception>
    public static DarknetHeader Load(DarkNet model, string path, int? cutoff = null) => Read(model, path, cutoff, prefix: false).Header;

    /// <summary>
    /// Loads a .weights file that may hold only the first modules (a backbone saved with a cutoff, as Darknet's
    /// <c>partial</c> writes <c>darknet53.conv.74</c>), whatever its name: the file may end after any convolution, and
    /// the second value says how many modules, from module 0, it filled (the network's count when it held
    /// them all). A file that ends inside a convolution's arrays is an error naming the layer.
    /// </summary>
    internal static (DarknetHeader Header, int Modules) LoadPrefix(DarkNet model, string path, int? cutoff) =>
        Read(model, path, cutoff, prefix: true);

    static (DarknetHeader Header, int Modules) Read(DarkNet model, string path, int? cutoff, bool prefix)
    {
        if (!File.Exists(path)) throw new InvalidInputException(path, "no such weights file");
        cutoff ??= CutoffOf(Path.GetFileName(path));
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 16) throw new InvalidInputException(path, $"{bytes.Length} bytes is too short for a Darknet weights header");
        var major = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(0));
        var minor = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4));
        var revision = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8));
        var header = new DarknetHeader(major, minor, revision, 0);
        if (header.SeenIs64 && bytes.Length < 20) throw new InvalidInputException(path, $"{bytes.Length} bytes is too short for a Darknet weights header of version {major}.{minor}");
        var seen = header.SeenIs64 ? BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(12)) : BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12));
        header = header with { Seen = seen };
        long offset = header.Size;
        var defs = model.Cfg.Modules.ToArray();
        using var _ = no_grad();
        int modules = Math.Min(cutoff ?? int.MaxValue, model.Modules.Count);
        foreach (var (index, conv, bn) in Convs(model, cutoff ?? int.MaxValue))
        {
            // a backbone file ends where its last convolution ends: the modules before this one are filled
            if (prefix && offset == bytes.Length && index > 0)
            {
                modules = index;
                break;
            }
            foreach (var (what, t) in Arrays(conv, bn))
            {
                long n = t.numel();
                long left = (bytes.Length - offset) / 4;
                if (left < n)
                    throw new InvalidInputException(path,
                        $"ran out at layer {index} ([convolutional] at cfg line {defs[index].Line}): " +
                        $"{what} needs {n} floats, {left} left");
                var floats = new float[n];
                Buffer.BlockCopy(bytes, (int)offset, floats, 0, (int)(n * 4));
                if (!BitConverter.IsLittleEndian)
                    for (int k = 0; k < floats.Length; k++)
                        floats[k] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReverseEndianness(BitConverter.SingleToInt32Bits(floats[k])));
                using var src = tensor(floats).view(t.shape);
                t.copy_(src);
                offset += n * 4;
            }
        }
        if (cutoff is null && offset != bytes.Length)
            throw new InvalidInputException(path,
                $"{bytes.Length - offset} surplus bytes after the last convolution: the file does not fit this cfg");
        return (header, modules);
    }

    /// <summary>The cutoff a file name gives: 75 for <c>darknet53.conv.74</c> (as the reference), N for Darknet's
    /// other partial files <c>NAME.conv.N</c> (e.g. <c>yolov3-tiny.conv.15</c>); null otherwise.</summary>
    internal static int? CutoffOf(string fileName)
    {
        if (fileName == "darknet53.conv.74") return Darknet53Cutoff;
        var at = fileName.LastIndexOf(".conv.", StringComparison.Ordinal);
        return at >= 0 && int.TryParse(fileName.AsSpan(at + 6), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0
            ? n : null;
    }

    /// <summary>
    /// Saves the network's convolutions (all, or those before <paramref name="cutoff"/>) as a .weights file, atomically.
    /// Saving what <see cref="Load"/> read, with the header it returned, reproduces the file byte for byte.
    /// </summary>
    public static void Save(DarkNet model, string path, DarknetHeader? header = null, int? cutoff = null)
    {
        header ??= DarknetHeader.Default;
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            w.Write(header.Major);
            w.Write(header.Minor);
            w.Write(header.Revision);
            if (header.SeenIs64) w.Write(header.Seen); else w.Write((int)header.Seen);
            foreach (var (_, conv, bn) in Convs(model, cutoff ?? int.MaxValue))
                foreach (var (_, t) in Arrays(conv, bn))
                {
                    using var c = t.detach().to(float32).cpu().contiguous();
                    var floats = c.data<float>().ToArray();
                    if (BitConverter.IsLittleEndian) w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(floats.AsSpan()));
                    else foreach (var f in floats) w.Write(f);
                }
        });
    }
}
