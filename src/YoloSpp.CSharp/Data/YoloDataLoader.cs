using System.Collections;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using TorchSharp;
using Targets = YoloSpp.Training.Targets;
using static TorchSharp.torch;

namespace YoloSpp.Data;

/// <summary>
/// A collated batch (the reference's collate_fn): images [bs, 3, H, W] float32 in 0..1 (RGB), targets [n, 6] as
/// (image index in batch, class, cx, cy, w, h) normalised. Owns its tensors: dispose it (or let a dispose scope
/// that was open when it was yielded take them).
/// </summary>
public sealed class DataBatch : IDisposable
{
    /// <summary>[bs, 3, H, W] float32, 0..1, RGB.</summary>
    public Tensor Images { get; }
    /// <summary>[n, 6] float32: image index in the batch, class, cx, cy, w, h (normalised).</summary>
    public Tensor Targets { get; }
    /// <summary>Image file of each item.</summary>
    public IReadOnlyList<string> Paths { get; }
    /// <summary>Dataset index of each item (the COCO image id).</summary>
    public IReadOnlyList<int> Indices { get; }
    /// <summary>Letterbox of each item (null for mosaics), to map boxes back to the original image.</summary>
    public IReadOnlyList<ImageShape?> Shapes { get; }

    internal DataBatch(Tensor images, Tensor targets, IReadOnlyList<string> paths, IReadOnlyList<int> indices, IReadOnlyList<ImageShape?> shapes) =>
        (Images, Targets, Paths, Indices, Shapes) = (images, targets, paths, indices, shapes);

    /// <summary>Frees the tensors.</summary>
    public void Dispose() { Images.Dispose(); Targets.Dispose(); }
}

/// <summary>
/// The reference's DataLoader over a <see cref="YoloDataset"/>: items of a batch prepared in parallel, the next
/// <see cref="DataOptions.Prefetch"/> batches prepared ahead through a bounded channel (so memory stays bounded),
/// tensors created on the consuming thread (inside its dispose scope) from pinned arrays. Enumerating the loader
/// gives epoch 0; <see cref="Epoch"/> gives any epoch (its own shuffle and augmentation draws).
/// </summary>
public sealed class YoloDataLoader(YoloDataset dataset) : IEnumerable<DataBatch>
{
    /// <summary>The dataset.</summary>
    public YoloDataset Dataset { get; } = dataset;

    /// <summary>Number of batches an epoch yields (the last may be smaller); sharded, this rank's full batches.</summary>
    public int BatchCount => Dataset.Options is { ShardCount: > 1 } o
        ? (Dataset.Count + o.ShardCount - 1) / o.ShardCount / o.BatchSize
        : (Dataset.Count + Dataset.Options.BatchSize - 1) / Dataset.Options.BatchSize;

    /// <summary>The dataset indices of each batch of an epoch: the epoch order in consecutive batches, or, with
    /// <see cref="DataOptions.ShardCount"/> &gt; 1, this rank's shard of it (DistributedSampler, then BatchSampler
    /// with drop_last).</summary>
    /// <exception cref="ArgumentException">The shard settings are out of range, or sharding is asked with rect batches.</exception>
    public int[][] Batches(int epoch)
    {
        var o = Dataset.Options;
        var order = Order(epoch);
        if (o.ShardCount <= 1)
            return Enumerable.Range(0, (order.Length + o.BatchSize - 1) / o.BatchSize)
                .Select(b => order[(b * o.BatchSize)..Math.Min(order.Length, (b + 1) * o.BatchSize)]).ToArray();
        if (o.Rect) throw new ArgumentException("rect batches cannot be sharded (their shapes are per batch of the whole list)");
        var shard = Sharding.distributedIndices(order, o.ShardRank, o.ShardCount);
        if (shard.IsError) throw new ArgumentException(shard.ErrorValue);
        var batches = Sharding.batches(shard.ResultValue, o.BatchSize, true);
        if (batches.IsError) throw new ArgumentException(batches.ErrorValue);
        return batches.ResultValue;
    }

    /// <summary>The dataset indices of an epoch in order: shuffled with (seed, epoch) when asked and not rect.</summary>
    public int[] Order(int epoch)
    {
        var order = Enumerable.Range(0, Dataset.Count).ToArray();
        var o = Dataset.Options;
        if (o.Shuffle && !o.Rect) YoloDataset.RandomFor(o.Seed, epoch, -1).Shuffle(order);
        return order;
    }

    /// <summary>The batches of one epoch.</summary>
    public IEnumerable<DataBatch> Epoch(int epoch)
    {
        var o = Dataset.Options;
        var batches = Batches(epoch);
        var channel = Channel.CreateBounded<Collated>(new BoundedChannelOptions(Math.Max(1, o.Prefetch)) { SingleReader = true, SingleWriter = true });
        using var cts = new CancellationTokenSource();
        var producer = Task.Run(async () =>
        {
            try
            {
                foreach (var idx in batches)
                {
                    var samples = new Sample[idx.Length];
                    Parallel.For(0, idx.Length, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, o.Workers), CancellationToken = cts.Token },
                        k => samples[k] = Dataset.GetItem(idx[k], epoch));
                    await channel.Writer.WriteAsync(Collate(samples), cts.Token);
                }
                channel.Writer.Complete();
            }
            catch (Exception e) { channel.Writer.Complete(e); }
        });
        try
        {
            while (true)
            {
                Collated c;
                try
                {
                    if (!channel.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) break;
                    if (!channel.Reader.TryRead(out c!)) continue;
                }
                catch (AggregateException e) when (e.InnerException is not null) { throw e.InnerException; }
                yield return c.ToBatch();
            }
        }
        finally
        {
            // a consumer that stops early must not leave the producer blocked on a full channel
            cts.Cancel();
            try { producer.Wait(); } catch (AggregateException) { }
        }
    }

    /// <summary>Epoch 0.</summary>
    public IEnumerator<DataBatch> GetEnumerator() => Epoch(0).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>collate_fn on managed arrays: images stacked (uint8 → float / 255, HWC RGB → CHW), targets with their image index.</summary>
    static Collated Collate(Sample[] samples)
    {
        int h = samples[0].Image.Height, w = samples[0].Image.Width, plane = h * w;
        foreach (var s in samples)
            if (s.Image.Height != h || s.Image.Width != w)
                throw new InvalidOperationException($"batch images differ in size: {s.Path} is {s.Image.Width}x{s.Image.Height}, expected {w}x{h}");
        var images = new float[samples.Length * 3 * plane];
        var targets = new List<float>();
        for (int i = 0; i < samples.Length; i++)
        {
            var px = samples[i].Image.Pixels;
            int off = i * 3 * plane;
            for (int p = 0; p < plane; p++)
            {
                images[off + p] = px[p * 3] / 255f;
                images[off + plane + p] = px[p * 3 + 1] / 255f;
                images[off + 2 * plane + p] = px[p * 3 + 2] / 255f;
            }
            foreach (var r in samples[i].Labels)
                targets.AddRange([i, r.Class, (float)r.Cx, (float)r.Cy, (float)r.W, (float)r.H]);
        }
        return new Collated(images, [samples.Length, 3, h, w], targets.ToArray(),
            samples.Select(s => s.Path).ToArray(), samples.Select(s => s.Index).ToArray(), samples.Select(s => s.Shape).ToArray());
    }

    sealed record Collated(float[] Images, long[] Shape, float[] Targets, string[] Paths, int[] Indices, ImageShape?[] Shapes)
    {
        public DataBatch ToBatch() =>
            new(FromPinned(Images, Shape), FromPinned(Targets, [Targets.Length / 6, 6]), Paths, Indices, Shapes);

        // torch.tensor over a float[] pins the array (a GCHandle released when the tensor is freed) and shares it:
        // no copy, and the managed array lives exactly as long as the tensor
        static Tensor FromPinned(float[] data, long[] shape) => torch.tensor(data, shape);
    }
}
