using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace YoloSpp.Model;

/// <summary>
/// Reads safetensors only after checking the layout the format promises, so that a damaged or hostile file is an
/// error naming it instead of a crash in the reader: an 8-byte little-endian header length that fits the file (and
/// the format's 100 MB header limit), a JSON object header, and for every tensor a known dtype, a shape of
/// non-negative sizes whose byte count matches its <c>data_offsets</c>, and offsets inside the data that follows.
/// </summary>
internal static class SafetensorsCheck
{
    /// <summary>The format's own limit on the header (safetensors' MAX_HEADER_SIZE).</summary>
    const long MaxHeader = 100_000_000;

    /// <summary>Bytes per element of each dtype the format defines.</summary>
    static readonly Dictionary<string, int> ElementSize = new()
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E5M2"] = 1, ["F8_E4M3"] = 1, ["I16"] = 2, ["U16"] = 2, ["F16"] = 2,
        ["BF16"] = 2, ["I32"] = 4, ["U32"] = 4, ["F32"] = 4, ["F64"] = 8, ["I64"] = 8, ["U64"] = 8,
    };

    /// <summary>Loads a state dict from a safetensors file after <see cref="Check"/>.</summary>
    /// <exception cref="InvalidInputException">The file is not a well-formed safetensors file; the message names it and says why.</exception>
    public static Dictionary<string, Tensor> Load(string path)
    {
        using var stream = File.OpenRead(path);
        return Load(stream, path);
    }

    /// <summary>Loads a state dict from a seekable stream holding a safetensors file, after <see cref="Check"/>;
    /// <paramref name="name"/> names it in errors.</summary>
    public static Dictionary<string, Tensor> Load(Stream stream, string name)
    {
        Check(stream, name);
        stream.Position = 0;
        try { return Safetensors.LoadStateDict(stream, leaveOpen: true); }
        // the layout was right; what the reader still refuses (a dtype TorchSharp lacks) is named with the file
        catch (Exception e) when (e is ArgumentException or NotSupportedException or NotImplementedException or InvalidOperationException
            or IOException or FormatException or KeyNotFoundException or OverflowException)
        {
            throw new InvalidInputException(name, $"not readable as safetensors ({e.Message})", e);
        }
    }

    /// <summary>Checks the layout of a safetensors file held in a seekable stream.</summary>
    /// <exception cref="InvalidInputException">Why the file is not well-formed, naming it.</exception>
    public static void Check(Stream stream, string name)
    {
        long length = stream.Length;
        stream.Position = 0;
        Span<byte> prefix = stackalloc byte[8];
        if (length < 8 || stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false) < 8)
            throw Bad(name, $"{length} bytes: too short for a safetensors file (an 8-byte header length comes first)");
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > (ulong)(length - 8))
            throw Bad(name, $"its header length {n:N0} runs past the end of the file ({length:N0} bytes): truncated, or not safetensors");
        if (n > MaxHeader) throw Bad(name, $"its header length {n:N0} is above the format's limit of {MaxHeader:N0}");
        var header = new byte[n];
        stream.ReadExactly(header);
        long dataLength = length - 8 - (long)n;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw Bad(name, $"its header is not JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(name, "its header is not a JSON object");
            foreach (var t in doc.RootElement.EnumerateObject())
            {
                if (t.Name == "__metadata__") continue;
                CheckTensor(name, t.Name, t.Value, dataLength);
            }
        }
    }

    static void CheckTensor(string file, string tensor, JsonElement e, long dataLength)
    {
        InvalidInputException Fail(string why) => Bad(file, $"tensor '{tensor}': {why}");
        if (e.ValueKind != JsonValueKind.Object) throw Fail("not an object with dtype, shape and data_offsets");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String || !ElementSize.TryGetValue(dt.GetString()!, out var size))
            throw Fail($"unknown dtype (known: {string.Join(", ", ElementSize.Keys)})");
        if (!e.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array) throw Fail("no shape");
        if (!e.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Fail("data_offsets must be [begin, end]");
        long elements = 1;
        foreach (var d in shape.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var v) || v < 0) throw Fail($"shape {shape} has a size that is not a whole number >= 0");
            try { elements = checked(elements * v); }
            catch (OverflowException) { throw Fail($"shape {shape} has more elements than any file can hold"); }
        }
        long[] o = offsets.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Number && x.TryGetInt64(out var v) ? v : -1).ToArray();
        if (o[0] < 0 || o[1] < o[0]) throw Fail($"data_offsets {offsets} are not 0 <= begin <= end");
        if (o[1] > dataLength) throw Fail($"data_offsets {offsets} run past the {dataLength:N0} bytes of data: the file is truncated");
        long bytes;
        try { bytes = checked(elements * size); }
        catch (OverflowException) { throw Fail($"shape {shape} has more elements than any file can hold"); }
        if (bytes != o[1] - o[0]) throw Fail($"shape {shape} of {dt.GetString()} needs {bytes:N0} bytes, its data_offsets {offsets} hold {o[1] - o[0]:N0}");
    }

    static InvalidInputException Bad(string file, string why) => new(file, why);
}
