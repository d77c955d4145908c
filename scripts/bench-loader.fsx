// Loader throughput on a generated set: N random 640x480 JPEGs (gradients, rectangles, a little noise) in a temp
// folder, then images/s of mosaic training batches and letterboxed eval batches at 512, and the peak working set.
//   dotnet fsi build.fsx build && dotnet fsi scripts/bench-loader.fsx [images=24] [batch=8]
#load "yolospp.fsx"

open System
open System.Diagnostics
open System.IO
open YoloSpp
open YoloSpp.Data
let args = fsi.CommandLineArgs |> Array.skip 1
let n = if args.Length > 0 then int args[0] else 24
let bs = if args.Length > 1 then int args[1] else 8
let dir = Directory.CreateTempSubdirectory "yolospp-bench-"
try
    let rnd = Random 0
    Directory.CreateDirectory(Path.Combine(dir.FullName, "images")) |> ignore
    Directory.CreateDirectory(Path.Combine(dir.FullName, "labels")) |> ignore
    let list =
        [ for i in 0 .. n - 1 ->
            let w, h = 640, 480
            let px = Array.init (w * h * 3) (fun k -> let p = k / 3 in byte ((p % w) * 255 / w / 2 + (p / w) * 255 / h / 2 + rnd.Next 16))
            let rows =
                [ for _ in 1 .. 1 + rnd.Next 5 ->
                    let bw, bh = 20 + rnd.Next 200, 20 + rnd.Next 200
                    let x1, y1 = rnd.Next(w - bw), rnd.Next(h - bh)
                    let c = [| byte (rnd.Next 256); byte (rnd.Next 256); byte (rnd.Next 256) |]
                    for y in y1 .. y1 + bh - 1 do
                        for x in x1 .. x1 + bw - 1 do
                            for ch in 0..2 do px[(y * w + x) * 3 + ch] <- c[ch]
                    sprintf "%d %f %f %f %f" (rnd.Next 5) ((float x1 + float bw / 2.0) / float w) ((float y1 + float bh / 2.0) / float h) (float bw / float w) (float bh / float h) ]
            let name = sprintf "%03d.jpg" i
            RgbImage(w, h, px).Save(Path.Combine(dir.FullName, "images", name))
            File.WriteAllLines(Path.Combine(dir.FullName, "labels", sprintf "%03d.txt" i), rows)
            "images/" + name ]
    let listPath = Path.Combine(dir.FullName, "list.txt")
    File.WriteAllLines(listPath, list)
    let hyp = HyperParameters.Default
    let run name (o: DataOptions) epochs =
        let loader = YoloDataLoader(YoloDataset.Open(listPath, 5, o))
        // one warm-up epoch (JIT, Skia init), then timed epochs
        for b in loader.Epoch 0 do b.Dispose()
        let sw = Stopwatch.StartNew()
        let mutable images = 0
        for e in 1 .. epochs do
            for b in loader.Epoch e do
                use _ = b
                images <- images + b.Indices.Count
        sw.Stop()
        printfn "%-28s %6.1f img/s  (%d images, batch %d, %d cores)" name (float images / sw.Elapsed.TotalSeconds) images bs Environment.ProcessorCount
    run "mosaic train @512" (DataOptions(ImageSize = 512, BatchSize = bs, Augment = true, Shuffle = true, Hyp = hyp)) 3
    run "letterbox eval @512" (DataOptions(ImageSize = 512, BatchSize = bs, Hyp = hyp)) 3
    run "rect eval @512" (DataOptions(ImageSize = 512, BatchSize = bs, Rect = true, Hyp = hyp)) 3
    printfn "peak working set: %.0f MiB" (float (Process.GetCurrentProcess().PeakWorkingSet64) / 1048576.0)
finally dir.Delete true
