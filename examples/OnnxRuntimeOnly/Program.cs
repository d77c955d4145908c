// Detects objects with a model that `yolospp export` wrote, using only ONNX Runtime (and SkiaSharp to read the
// image): no YoloSpp and no libtorch at run time.
//   dotnet run --project examples/OnnxRuntimeOnly -- model.onnx image.jpg [score threshold, default 0.3] [size, default 512]
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using SkiaSharp;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: OnnxRuntimeOnly model.onnx image.jpg [threshold] [size]");
    return 2;
}
float threshold = args.Length > 2 ? float.Parse(args[2], CultureInfo.InvariantCulture) : 0.3f;
int size = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 512;
using var session = new InferenceSession(args[0]);
var names = JsonSerializer.Deserialize<string[]>(session.ModelMetadata.CustomMetadataMap["names"])!;

// letterbox: the long side to size (or into the model's fixed input), padded with black at the right and bottom to a
// multiple of 32; the image in RGB planes scaled to [0, 1]
using var image = SKBitmap.Decode(args[1]) ?? throw new InvalidDataException($"{args[1]}: not an image");
var dims = session.InputMetadata["images"].Dimensions;   // [batch, 3, height, width]; -1 where dynamic
float scale = dims[2] > 0 ? Math.Min(dims[2] / (float)image.Height, dims[3] / (float)image.Width) : size / (float)Math.Max(image.Width, image.Height);
int w = (int)Math.Round(image.Width * scale), h = (int)Math.Round(image.Height * scale);
int inW = dims[3] > 0 ? dims[3] : (w + 31) / 32 * 32, inH = dims[2] > 0 ? dims[2] : (h + 31) / 32 * 32;
using var resized = image.Resize(new SKImageInfo(w, h, SKColorType.Rgba8888), new SKSamplingOptions(SKFilterMode.Linear));
var pixels = new float[3 * inH * inW];
for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
    {
        var c = resized.GetPixel(x, y);
        pixels[y * inW + x] = c.Red / 255f;
        pixels[inH * inW + y * inW + x] = c.Green / 255f;
        pixels[2 * inH * inW + y * inW + x] = c.Blue / 255f;
    }

// the model: prediction [batch, rows, 5 + nc] = x, y, w, h (input pixels), objectness, class scores
using var input = OrtValue.CreateTensorValueFromMemory(pixels, new long[] { 1, 3, inH, inW });
using var outputs = session.Run(new RunOptions(), new[] { "images" }, new[] { input }, new[] { "prediction" });
var p = outputs[0].GetTensorDataAsSpan<float>();
int no = names.Length + 5;
var found = new List<(int Class, float Score, float X1, float Y1, float X2, float Y2)>();
for (int r = 0; r < p.Length / no; r++)
{
    var row = p.Slice(r * no, no);
    int best = 0;
    for (int k = 1; k < names.Length; k++) if (row[5 + k] > row[5 + best]) best = k;
    float score = row[4] * row[5 + best];
    if (score < threshold || row[2] < 2 || row[3] < 2) continue;   // as the reference's NMS: no boxes under 2 px
    float Clamp(float v, int max) => Math.Clamp(v / scale, 0, max);   // back to image pixels, inside the image
    found.Add((best, score, Clamp(row[0] - row[2] / 2, image.Width), Clamp(row[1] - row[3] / 2, image.Height),
        Clamp(row[0] + row[2] / 2, image.Width), Clamp(row[1] + row[3] / 2, image.Height)));
}

// greedy NMS per class at IoU 0.6, best score first
static float Iou((int, float, float X1, float Y1, float X2, float Y2) a, (int, float, float X1, float Y1, float X2, float Y2) b)
{
    float iw = Math.Max(0, Math.Min(a.X2, b.X2) - Math.Max(a.X1, b.X1)), ih = Math.Max(0, Math.Min(a.Y2, b.Y2) - Math.Max(a.Y1, b.Y1));
    float inter = iw * ih;
    return inter / ((a.X2 - a.X1) * (a.Y2 - a.Y1) + (b.X2 - b.X1) * (b.Y2 - b.Y1) - inter);
}
var kept = new List<(int Class, float Score, float X1, float Y1, float X2, float Y2)>();
foreach (var d in found.OrderByDescending(d => d.Score))
    if (!kept.Any(k => k.Class == d.Class && Iou(k, d) > 0.6f)) kept.Add(d);

Console.WriteLine($"{args[1]}: {image.Width}x{image.Height}, input {inW}x{inH}, {kept.Count} detections");
foreach (var d in kept)
    Console.WriteLine(FormattableString.Invariant($"{names[d.Class]} {d.Score:F3} ({d.X1:F0}, {d.Y1:F0})-({d.X2:F0}, {d.Y2:F0})"));
return 0;
