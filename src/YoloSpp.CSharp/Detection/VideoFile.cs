using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using FFMpegCore;
using FFMpegCore.Exceptions;
using FFMpegCore.Pipes;
using YoloSpp.Data;

namespace YoloSpp.Detection;

/// <summary>A video's stream as ffprobe reports it.</summary>
/// <param name="Width">Frame width as decoded (after the rotation tag is applied).</param>
/// <param name="Height">Frame height as decoded.</param>
/// <param name="FrameRate">Average frames per second.</param>
/// <param name="FrameCount">Frames the container declares (null when it does not say: mkv, webm).</param>
/// <param name="Duration">Length of the file.</param>
public sealed record VideoInfo(int Width, int Height, double FrameRate, long? FrameCount, TimeSpan Duration);

/// <summary>
/// Videos through ffmpeg (the system's <c>ffmpeg</c> and <c>ffprobe</c>, found on PATH; Debian's <c>ffmpeg</c>
/// package): probing, decoding to RGB frames one at a time, and writing annotated frames to an H.264 mp4.
/// </summary>
public static class VideoFile
{
    /// <summary>The message for a machine without ffmpeg.</summary>
    internal const string Missing = "ffmpeg and ffprobe are needed for videos and were not found on PATH (Debian/Ubuntu: apt-get install ffmpeg)";

    static InvalidInputException Unreadable(string path, Exception e)
    {
        if (e is FileNotFoundException) return new InvalidInputException(path, "no such file");
        if (e.Message.Contains("was not found on your system", StringComparison.Ordinal)) return new InvalidInputException(path, Missing, e);
        var detail = e is FFProbeProcessException p ? string.Join(" | ", p.StandardError.Where(l => l.Length > 0).TakeLast(2))
            : e is FFMpegProcessException f ? string.Join(" | ", f.Result.StandardError.Where(l => l.Length > 0).TakeLast(2)) : e.Message;
        return new InvalidInputException(path, $"not a readable video ({detail})", e);
    }

    /// <summary>Probes a video: its first video stream's decoded size, frame rate, declared frame count and duration.</summary>
    /// <exception cref="InvalidInputException">The file is missing, not a video, or ffprobe is not installed.</exception>
    public static VideoInfo Probe(string path)
    {
        IMediaAnalysis a;
        try { a = FFProbe.Analyse(path); }
        catch (Exception e) when (e is FFMpegException or FileNotFoundException or IOException) { throw Unreadable(path, e); }
        var v = a.PrimaryVideoStream;
        // ffmpeg reads text as 'tty' video: only real video streams count
        if (v is null || v.Width is not int w || v.Height is not int h || w <= 0 || h <= 0 || a.Format.FormatName == "tty")
            throw new InvalidInputException(path, "has no video stream");
        if (Math.Abs(v.Rotation % 180) == 90) (w, h) = (h, w);
        if ((long)w * h > RgbImage.MaxPixels)
            throw new InvalidInputException(path, $"frames of {w}x{h} exceed the pixel limit {RgbImage.MaxPixels:N0} (--max-pixels)");
        long? count = null;
        var raw = a.Raw?.Streams?.FirstOrDefault(s => s.CodecType == "video");
        if (raw?.ExtensionData is { } extra && extra.TryGetValue("nb_frames", out var nb)
            && long.TryParse(nb.ValueKind == System.Text.Json.JsonValueKind.String ? nb.GetString() : nb.ToString(), out var n))
            count = n;
        return new VideoInfo(w, h, v.AverageFrameRate > 0 ? v.AverageFrameRate : v.RealFrameRate, count, a.Duration);
    }

    /// <summary>
    /// Decodes every <paramref name="stride"/>-th frame (0, stride, 2·stride, …) as RGB, one at a time: ffmpeg writes
    /// raw frames into a pipe, at most four wait decoded, and leaving the loop (or cancelling) stops ffmpeg at once.
    /// </summary>
    /// <exception cref="InvalidInputException">ffmpeg failed to decode (the message has its last error lines).</exception>
    public static async IAsyncEnumerable<(int Frame, RgbImage Image)> Frames(string path, VideoInfo info, int stride = 1,
        [EnumeratorCancellation] CancellationToken cancellation = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        int w = info.Width, h = info.Height, size = checked(w * h * 3);
        var channel = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
        using var stop = new CancellationTokenSource();
        // FFMpegCore cancels the sink's token when ffmpeg exits, which would drop the frames still in the pipe while
        // a slow consumer holds the queue full: the sink reads and queues under our own token, to the end of the pipe
        var sink = new StreamPipeSink(async (stream, _) =>
        {
            var token = stop.Token;
            while (true)
            {
                var buffer = new byte[size];
                int read = 0;
                while (read < size)
                {
                    int n = await stream.ReadAsync(buffer.AsMemory(read), token).ConfigureAwait(false);
                    if (n == 0) break;
                    read += n;
                }
                if (read == 0) return;
                if (read < size) throw new EndOfStreamException($"a partial frame at the end ({read} of {size} bytes)");
                await channel.Writer.WriteAsync(buffer, token).ConfigureAwait(false);
            }
        });
        var run = FFMpegArguments.FromFileInput(path)
            .OutputToPipe(sink, o =>
            {
                o.WithVideoCodec("rawvideo").ForceFormat("rawvideo").WithPixelFormat("rgb24");
                // without passthrough ffmpeg repeats frames to keep the rate
                if (stride > 1) o.WithVideoFilters(f => f.WithCustomFilter("select", $"not(mod(n,{stride}))")).WithFpsMode("passthrough");
            })
            // no grace period: a consumer that stopped reading leaves ffmpeg blocked on the pipe, deaf to 'q'
            .CancellableThrough(out var cancelFfmpeg, TimeSpan.Zero);
        // stops the sink and ffmpeg; FFMpegCore's cancel writes 'q' to ffmpeg's input first, which throws when ffmpeg
        // has already gone (a broken pipe): that is the outcome wanted, not an error of the caller's Cancel()
        void Stop()
        {
            try { stop.Cancel(); } catch (AggregateException) { }
            try { cancelFfmpeg(); }
            catch (Exception e) when (e is IOException or AggregateException or InvalidOperationException or ObjectDisposedException) { }
        }
        using var registration = cancellation.Register(Stop);
        var producer = Task.Run(async () =>
        {
            try
            {
                await run.ProcessAsynchronously().ConfigureAwait(false);
                channel.Writer.TryComplete();
            }
            catch (Exception e) { channel.Writer.TryComplete(e); }
        });
        int k = 0;
        try
        {
            await using var frames = channel.Reader.ReadAllAsync(cancellation).GetAsyncEnumerator(cancellation);
            while (true)
            {
                bool more;
                try { more = await frames.MoveNextAsync().ConfigureAwait(false); }
                catch (Exception e) when (e is FFMpegException or EndOfStreamException or IOException) { throw Unreadable(path, e); }
                if (!more) break;
                yield return (k * stride, new RgbImage(w, h, frames.Current));
                k++;
            }
        }
        finally
        {
            Stop();
            try { await producer.ConfigureAwait(false); } catch { /* its error reached the reader, or it was cancelled */ }
        }
    }

    /// <summary>
    /// Writes frames to an H.264 mp4 (yuv420p, odd sizes padded to even) as they come: frames wait in a queue of
    /// four for ffmpeg, which pulls them from its own thread. The file appears under its name only when complete.
    /// </summary>
    public sealed class Writer : IDisposable
    {
        readonly BlockingCollection<byte[]> _queue = new(boundedCapacity: 4);
        readonly Task _encoder;
        readonly string _path, _temp;
        readonly int _width, _height;
        bool _closed;

        /// <summary>Starts ffmpeg for a video of <paramref name="width"/>×<paramref name="height"/> at <paramref name="frameRate"/>.</summary>
        public Writer(string path, int width, int height, double frameRate)
        {
            (_path, _width, _height) = (Path.GetFullPath(path), width, height);
            Directory.CreateDirectory(Path.GetDirectoryName(_path)!);
            _temp = Path.Combine(Path.GetDirectoryName(_path)!, $".{Path.GetFileNameWithoutExtension(_path)}.{Guid.NewGuid():N}.tmp.mp4");
            var source = new RawVideoPipeSource(Pull()) { FrameRate = frameRate > 0 ? frameRate : 25 };
            var args = FFMpegArguments.FromPipeInput(source).OutputToFile(_temp, true, o => o
                .WithVideoCodec("libx264").WithConstantRateFactor(23).WithSpeedPreset("veryfast")
                .WithPixelFormat("yuv420p")
                .WithVideoFilters(f => f.WithCustomFilter("pad", "ceil(iw/2)*2:ceil(ih/2)*2")));
            _encoder = Task.Run(() => args.ProcessAsynchronously());
        }

        IEnumerable<IVideoFrame> Pull()
        {
            foreach (var pixels in _queue.GetConsumingEnumerable()) yield return new Frame(pixels, _width, _height);
        }

        sealed class Frame(byte[] pixels, int width, int height) : IVideoFrame
        {
            public int Width => width;
            public int Height => height;
            public string PixelFormat => "rgb24";
            public void Serialize(Stream pipe) => pipe.Write(pixels);
            public Task SerializeAsync(Stream pipe, CancellationToken token) => pipe.WriteAsync(pixels, token).AsTask();
        }

        /// <summary>Queues one frame (its size must be the video's); waits while four are queued.</summary>
        public void Add(RgbImage frame)
        {
            if (frame.Width != _width || frame.Height != _height)
                throw new ArgumentException($"frame {frame.Width}x{frame.Height} in a {_width}x{_height} video");
            ObjectDisposedException.ThrowIf(_closed, this);
            // a queue that does not drain means ffmpeg stopped: Close reports why
            while (!_queue.TryAdd(frame.Pixels, 200))
                if (_encoder.IsCompleted)
                {
                    Close();
                    throw new IOException($"{_path}: ffmpeg stopped before the video ended");
                }
        }

        /// <summary>Ends the stream, waits for ffmpeg and renames the file into place.</summary>
        /// <exception cref="IOException">ffmpeg failed (its last error lines).</exception>
        public void Close()
        {
            if (_closed) return;
            _closed = true;
            _queue.CompleteAdding();
            try
            {
                _encoder.GetAwaiter().GetResult();
                File.Move(_temp, _path, overwrite: true);
            }
            catch (Exception e) when (e is FFMpegException)
            {
                var detail = e is FFMpegProcessException f ? string.Join(" | ", f.Result.StandardError.Where(l => l.Length > 0).TakeLast(2)) : e.Message;
                throw new IOException($"{_path}: ffmpeg could not write the video ({detail})", e);
            }
            finally
            {
                if (File.Exists(_temp)) File.Delete(_temp);
            }
        }

        /// <summary>Closes the video (see <see cref="Close"/>) unless already closed.</summary>
        public void Dispose()
        {
            if (!_closed)
            {
                try { Close(); } catch (IOException) { }
            }
            _queue.Dispose();
        }
    }
}
