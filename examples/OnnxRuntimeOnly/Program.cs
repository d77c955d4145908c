// Detects objects with a model that `yolospp export --nms` wrote, using only ONNX Runtime (and SkiaSharp to read the
// image): no YoloSpp, no libtorch and no post-processing at run time; the model's NMS gives the final boxes.
//   dotnet run --project examples/OnnxRuntimeOnly -- model.onnx image.jpg [size, default 512]
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using SkiaSharp;

if (args.Length < 2)
{
    Console.Error.WriteLine("usage: OnnxRuntimeOnly model.onnx image.jpg [size]");
    return 2;
}
int size = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 512;
using var session = new InferenceSession(args[0]);
if (!session.OutputMetadata.ContainsKey("detections"))
{
    Console.Error.WriteLine($"{args[0]}: no 'detections' output: export the model with `yolospp export --nms`");
    return 2;
}
var names = JsonSerializer.Deserialize<string[]>(session.ModelMetadata.CustomMetadataMap["names"])!;

// letterbox (the model's metadata "letterbox" states the rule): the image scaled by r, the long side to size (or into
// the model's fixed input), padded with black at the right and bottom to a multiple of 32; RGB planes in [0, 1]
using var image = SKBitmap.Decode(args[1]) ?? throw new InvalidDataException($"{args[1]}: not an image");
var dims = session.InputMetadata["images"].Dimensions;   // [batch, 3, height, width]; -1 where dynamic
float r = dims[2] > 0 ? Math.Min(dims[2] / (float)image.Height, dims[3] / (float)image.Width) : size / (float)Math.Max(image.Width, image.Height);
int w = (int)Math.Round(image.Width * r), h = (int)Math.Round(image.Height * r);
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

// detections [N, 7] = batch index, x1, y1, x2, y2 (input pixels), score, class: final boxes, best first
using var input = OrtValue.CreateTensorValueFromMemory(pixels, new long[] { 1, 3, inH, inW });
using var outputs = session.Run(new RunOptions(), new[] { "images" }, new[] { input }, new[] { "detections" });
var d = outputs[0].GetTensorDataAsSpan<float>();
Console.WriteLine($"{args[1]}: {image.Width}x{image.Height}, input {inW}x{inH}, {d.Length / 7} detections");
float Back(float v, int max) => Math.Clamp(v / r, 0, max);   // padding at the right and bottom: pad_left = pad_top = 0
for (int k = 0; k < d.Length / 7; k++)
{
    var row = d.Slice(k * 7, 7);
    Console.WriteLine(FormattableString.Invariant(
        $"{names[(int)row[6]]} {row[5]:F3} ({Back(row[1], image.Width):F0}, {Back(row[2], image.Height):F0})-({Back(row[3], image.Width):F0}, {Back(row[4], image.Height):F0})"));
}
return 0;
