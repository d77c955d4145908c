using System.Text;
using System.Text.Json;
using YoloSpp.Data;

namespace YoloSpp.Detection;

/// <summary>Detections in the forms yolov5's detect.py saves them: YOLO label rows (<c>--save-txt</c>), COCO result
/// entries (<c>--save-json</c>) and crops (<c>--save-crop</c>).</summary>
public static class DetectionOutputs
{
    /// <summary>YOLO label text of the detections of a <paramref name="width"/>×<paramref name="height"/> image: one
    /// <c>class cx cy w h</c> row each, normalised (with <paramref name="withConfidence"/>, the score after it, as
    /// <c>--save-conf</c>). Numbers are written in full (yolov5 writes %g); "" for no detections.</summary>
    public static string LabelText(IEnumerable<Detection> detections, int width, int height, bool withConfidence = false)
    {
        var text = new StringBuilder();
        foreach (var d in detections)
        {
            var row = new Labels.LabelRow(d.ClassId, (d.X1 + d.X2) / 2 / width, (d.Y1 + d.Y2) / 2 / height, (d.X2 - d.X1) / width, (d.Y2 - d.Y1) / height);
            text.Append(Labels.rowText(row));
            if (withConfidence) text.Append(' ').Append(PyFloat.repr(d.Confidence));
            text.Append('\n');
        }
        return text.ToString();
    }

    /// <summary>yolov5's save_one_box: the box widened by 2 % plus 10 pixels on each axis around its centre, truncated
    /// to whole pixels and clipped to the image.</summary>
    public static RgbImage Crop(RgbImage image, Detection d, double gain = 1.02, double pad = 10)
    {
        double cx = (d.X1 + d.X2) / 2, cy = (d.Y1 + d.Y2) / 2;
        double w = (d.X2 - d.X1) * gain + pad, h = (d.Y2 - d.Y1) * gain + pad;
        // .long() truncates toward zero, then clip_boxes clamps to the image
        int x1 = Math.Clamp((int)(cx - w / 2), 0, image.Width), x2 = Math.Clamp((int)(cx + w / 2), 0, image.Width);
        int y1 = Math.Clamp((int)(cy - h / 2), 0, image.Height), y2 = Math.Clamp((int)(cy + h / 2), 0, image.Height);
        var crop = new RgbImage(Math.Max(x2 - x1, 1), Math.Max(y2 - y1, 1), new byte[Math.Max(x2 - x1, 1) * Math.Max(y2 - y1, 1) * 3]);
        crop.Paste(image, x1, y1, x2, y2, 0, 0);
        return crop;
    }

    /// <summary>The image id yolov5's val.py writes for a file: its name without extension as a number when it is
    /// one (COCO's 000000000139.jpg → 139), else the name itself.</summary>
    public static object ImageId(string path)
    {
        var stem = Path.GetFileNameWithoutExtension(path);
        return long.TryParse(stem, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : stem;
    }

    /// <summary>Writes COCO result entries (<c>{"image_id", "category_id", "bbox": [x, y, w, h], "score"}</c>) for one
    /// image: category id = class + 1 (the categories <c>yolo2coco</c> writes), boxes in the image's pixels.</summary>
    public static void WriteCocoResults(Utf8JsonWriter w, object imageId, IEnumerable<Detection> detections)
    {
        foreach (var d in detections)
        {
            w.WriteStartObject();
            if (imageId is long n) w.WriteNumber("image_id", n); else w.WriteString("image_id", imageId.ToString());
            w.WriteNumber("category_id", d.ClassId + 1);
            w.WriteStartArray("bbox");
            w.WriteNumberValue(d.X1);
            w.WriteNumberValue(d.Y1);
            w.WriteNumberValue(d.X2 - d.X1);
            w.WriteNumberValue(d.Y2 - d.Y1);
            w.WriteEndArray();
            w.WriteNumber("score", Math.Round(d.Confidence, 5));
            w.WriteEndObject();
        }
    }
}
