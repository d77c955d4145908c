using System.Diagnostics;
using Microsoft.FSharp.Core;
using YoloSpp.Data;
using static TorchSharp.torch;
using Boxes = YoloSpp.Geometry.Boxes;
using Slicing = YoloSpp.Detection.Slicing;

namespace YoloSpp.Detection;

/// <summary>How <see cref="DetectorOptions.Slice"/> merges the detections of the tiles.</summary>
public enum SliceMerge
{
    /// <summary>NMS per class: a lower-scored box that matches a kept one (<see cref="SliceMatch"/>) is dropped.</summary>
    Nms = 0,
    /// <summary>SAHI's greedy non-maximum merging per class: a lower-scored box that matches a kept one is merged into
    /// it (their union).</summary>
    Nmm = 1,
}

/// <summary>How <see cref="DetectorOptions.Slice"/> compares two boxes when merging.</summary>
public enum SliceMatch
{
    /// <summary>Intersection over the smaller box's area (SAHI's IOS): the part of an object cut by a tile edge,
    /// lying inside the whole object the neighbouring tile saw, matches it, so the object is found once.</summary>
    Ios = 0,
    /// <summary>Intersection over union.</summary>
    Iou = 1,
}

public sealed partial class Detector
{
    /// <summary>Tiles per forward pass: bounds the batch's memory on large images.</summary>
    const int TilesPerBatch = 16;

    /// <summary>Sliced inference (<see cref="DetectorOptions.Slice"/>): the tiles and the whole image, each
    /// letterboxed to the square input (exactly the input of a model with a fixed size), in batches; per tile the
    /// detector's NMS and scale_coords into the tile, then into the image; all merged and cut to the detection cap.</summary>
    DetectionResult RunSliced(RgbImage image, int side, Stopwatch watch)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (th, tw) = _model.FixedImageSize ?? (ImageSize, ImageSize);
        var options = new Letterbox.Options(Letterbox.Variant.ImgUtils, false, false, true);
        var tiles = Slicing.tiles(image.Width, image.Height, side, Options.SliceOverlap).ToList();
        if (Options.SliceWholeImage && tiles.Count > 1) tiles.Add(new Slicing.Tile(0, 0, image.Width, image.Height));
        var boxes = new List<Slicing.Box>();
        TimeSpan preprocess = watch.Elapsed, inference = TimeSpan.Zero;   // decoding a file counts as pre-processing
        int perBatch = _model.FixedBatchSize ?? TilesPerBatch;
        for (int start = 0; start < tiles.Count; start += perBatch)
        {
            var t0 = watch.Elapsed;
            var batch = tiles.Skip(start).Take(perBatch).Select(t =>
            {
                var crop = RgbImage.Filled(t.X2 - t.X1, t.Y2 - t.Y1, 0);
                crop.Paste(image, t.X1, t.Y1, t.X2, t.Y2, 0, 0);
                var plan = Letterbox.plan(options, crop.Height, crop.Width, th, tw);
                return (Tile: t, Plan: plan, Input: crop.Letterboxed(plan, 0).ToTensor());
            }).ToArray();
            using var input = cat(batch.Select(b => b.Input).ToArray(), 0).to(_device);
            var t1 = watch.Elapsed;
            var pred = _model.Predict(input);
            if (_device.type == TorchSharp.DeviceType.CUDA) cuda.synchronize(_device);
            var t2 = watch.Elapsed;
            var perTile = Nms.nonMaxSuppression(_nms, pred);
            for (int k = 0; k < batch.Length; k++)
            {
                if (perTile[k] is not { } kept) continue;
                var (tile, plan, _) = batch[k];
                var rows = kept.Value.cpu();
                var scaled = Boxes.scaleCoords(th, tw, rows[TensorIndex.Colon, TensorIndex.Slice(0, 4)],
                    tile.Y2 - tile.Y1, tile.X2 - tile.X1, FSharpOption<Boxes.RatioPad>.Some(new Boxes.RatioPad(plan.RatioW, plan.PadW, plan.PadH))).round();
                var b = scaled.data<float>().ToArray();
                var r = rows.data<float>().ToArray();
                for (int i = 0; i < rows.shape[0]; i++)
                    boxes.Add(Slicing.toImage(tile, new Slicing.Box(b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3], r[6 * i + 4], (int)r[6 * i + 5])));
            }
            preprocess += t1 - t0;
            inference += t2 - t1;
        }
        var merged = Slicing.merge(Options.SliceMerge == SliceMerge.Nms ? Slicing.Merge.Nms : Slicing.Merge.Nmm,
            Options.SliceMatch == SliceMatch.Iou ? Slicing.Match.Iou : Slicing.Match.Ios, Options.SliceMatchThreshold, Options.AgnosticNms, boxes.ToArray());
        var detections = merged.Take(Options.MaxDetections)
            .Select(m => new Detection(m.Class, ClassNames[m.Class], m.Score, m.X1, m.Y1, m.X2, m.Y2)).ToArray();
        // the rest of the time: each tile's NMS and scale_coords, and the merge
        return new DetectionResult(detections, image.Width, image.Height, preprocess, inference, watch.Elapsed - preprocess - inference);
    }
}
