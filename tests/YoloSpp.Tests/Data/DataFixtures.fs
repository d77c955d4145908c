/// Small datasets the data tests build on disk: temp folders, red-box images and their labels, a .data file.
module YoloSpp.Tests.Data.DataFixtures

open System
open System.IO
open YoloSpp.Data

/// A fresh temp folder, deleted by the returned disposable.
let tempDir () =
    let d = Directory.CreateTempSubdirectory "yolospp-data-"

    d.FullName,
    { new IDisposable with
        member _.Dispose() =
            try
                d.Delete true
            with _ ->
                ()
    }

/// A grey w×h PNG with a red rectangle [x1, x2) × [y1, y2).
let redBoxImage (path: string) (w: int) (h: int) (x1: int, y1: int, x2: int, y2: int) =
    let img = RgbImage.Filled(w, h, 90uy)

    for y in y1 .. y2 - 1 do
        for x in x1 .. x2 - 1 do
            let o = (y * w + x) * 3
            img.Pixels[o] <- 255uy
            img.Pixels[o + 1] <- 0uy
            img.Pixels[o + 2] <- 0uy

    Directory.CreateDirectory(Path.GetDirectoryName path) |> ignore
    img.Save path

/// The YOLO row of a pixel rectangle on a w×h image.
let rowOf (w: int) (h: int) (x1: int, y1: int, x2: int, y2: int) =
    sprintf
        "0 %g %g %g %g"
        ((float x1 + float x2) / 2.0 / float w)
        ((float y1 + float y2) / 2.0 / float h)
        (float (x2 - x1) / float w)
        (float (y2 - y1) / float h)

/// A dataset folder: images/ with red-box images (64×48, 48×64) and a plain 64×48 one, labels/ for the red boxes
/// (the plain image has no label file: no objects), a list, names and a .data file. Returns the .data path.
let makeDataset (dir: string) =
    let specs =
        [
            "a.png", 64, 48, (10, 8, 40, 30)
            "b.png", 48, 64, (8, 20, 30, 56)
            "c.png", 64, 48, (0, 0, 0, 0)
        ]

    for i, (name, w, h, r) in List.indexed specs do
        redBoxImage (Path.Combine(dir, "images", name)) w h r

        if i < 2 then
            Directory.CreateDirectory(Path.Combine(dir, "labels")) |> ignore
            File.WriteAllText(Path.Combine(dir, "labels", Path.ChangeExtension(name, ".txt")), rowOf w h r + "\n")

    File.WriteAllLines(Path.Combine(dir, "list.txt"), specs |> List.map (fun (n, _, _, _) -> "images/" + n))
    File.WriteAllText(Path.Combine(dir, "shapes.names"), "shape\n\n")
    let data = Path.Combine(dir, "set.data")
    File.WriteAllText(data, "classes=1\ntrain=list.txt\nvalid=list.txt\nnames=shapes.names\n")
    data
