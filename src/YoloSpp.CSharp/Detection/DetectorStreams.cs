using System.Diagnostics;
using System.Runtime.CompilerServices;
using YoloSpp.Data;

namespace YoloSpp.Detection;

/// <summary>The detections of one image, or of one frame of a video, from a <see cref="Detector"/> stream; or the
/// reason a source gave none.</summary>
/// <param name="Path">The image or video file (for a problem: the source as given).</param>
/// <param name="Kind">Image or video; null for a source that named no file.</param>
/// <param name="Frame">The frame's index in the video (0-based, counting every frame, so with a stride of 5: 0, 5,
/// 10, …); 0 for an image.</param>
/// <param name="Image">The picture detected on (null with <see cref="Error"/>). Valid while the stream is on this
/// item: keep a copy to keep it.</param>
/// <param name="Result">Detections and timings (null with <see cref="Error"/>).</param>
/// <param name="Error">Why this source gave no picture (missing, unreadable, not a video); the stream goes on.</param>
public sealed record FrameDetections(string Path, SourceKind? Kind, int Frame, RgbImage? Image, DetectionResult? Result, InputError? Error)
{
    /// <summary>Whether this item holds detections (no <see cref="Error"/>).</summary>
    public bool Ok => Error is null;
}

public sealed partial class Detector
{
    /// <summary>
    /// Detects on images and videos as a lazy stream: the sources are expanded as <see cref="DetectSources.Expand"/>
    /// does (files, folders, globs, .txt lists), then each image gives one item and each video one item per decoded
    /// frame, in order. Nothing is held beyond the current item (video frames are decoded while the previous one is
    /// detected, four at most). A source that cannot be read gives an item with <see cref="FrameDetections.Error"/>
    /// and the stream goes on.
    /// </summary>
    /// <param name="sources">Paths, folders, globs or list files.</param>
    /// <param name="recursive">Read folders' sub-folders too.</param>
    /// <param name="videoStride">Detect on every n-th video frame (yolov5's <c>--vid-stride</c>). Default 1.</param>
    /// <param name="cancellation">Stops between items (and stops ffmpeg).</param>
    public async IAsyncEnumerable<FrameDetections> Detect(IEnumerable<string> sources, bool recursive = false, int videoStride = 1,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentOutOfRangeException.ThrowIfLessThan(videoStride, 1);
        var expansion = DetectSources.Expand(sources, recursive);
        foreach (var problem in expansion.Problems) yield return new FrameDetections(problem.File, null, 0, null, null, problem);
        foreach (var file in expansion.Files)
        {
            cancellation.ThrowIfCancellationRequested();
            if (file.Kind == SourceKind.Image)
            {
                var watch = Stopwatch.StartNew();
                RgbImage? image = null;
                InvalidInputException? error = null;
                try { image = RgbImage.Load(file.Path); }
                catch (InvalidInputException e) { error = e; }
                yield return image is null ? Failed(file, error!) : new FrameDetections(file.Path, SourceKind.Image, 0, image, Run(image, watch), null);
                continue;
            }
            VideoInfo? info = null;
            InvalidInputException? probeError = null;
            try { info = VideoFile.Probe(file.Path); }
            catch (InvalidInputException e) { probeError = e; }
            if (info is null) { yield return Failed(file, probeError!); continue; }
            await using var frames = VideoFile.Frames(file.Path, info, videoStride, cancellation).GetAsyncEnumerator(cancellation);
            while (true)
            {
                var watch = Stopwatch.StartNew();
                FrameDetections? failed = null;
                bool more;
                try { more = await frames.MoveNextAsync().ConfigureAwait(false); }
                catch (InvalidInputException e) { (more, failed) = (false, Failed(file, e)); }
                if (failed is not null) { yield return failed; break; }
                if (!more) break;
                var (frame, picture) = frames.Current;
                yield return new FrameDetections(file.Path, SourceKind.Video, frame, picture, Run(picture, watch), null);
            }
        }

        static FrameDetections Failed(DetectSource file, InvalidInputException e) =>
            new(file.Path, file.Kind, 0, null, null, e.Errors[0]);
    }

    /// <summary>Detects on every <paramref name="stride"/>-th frame of a video as a lazy stream (see
    /// <see cref="Detect(IEnumerable{string}, bool, int, CancellationToken)"/>); ffmpeg must be installed.</summary>
    /// <exception cref="InvalidInputException">The file is missing or not a readable video, or ffmpeg is missing
    /// (thrown when the stream starts), or decoding fails part-way.</exception>
    public async IAsyncEnumerable<FrameDetections> DetectVideo(string path, int stride = 1,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        var info = VideoFile.Probe(path);
        await foreach (var (frame, picture) in VideoFile.Frames(path, info, stride, cancellation).ConfigureAwait(false))
            yield return new FrameDetections(path, SourceKind.Video, frame, picture, Run(picture, Stopwatch.StartNew()), null);
    }
}
