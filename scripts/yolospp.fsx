// Loads the built YoloSpp libraries into an F# script: `#load "yolospp.fsx"` from a script in this folder.
// Build first: `dotnet fsi build.fsx build` (the runner's output folder holds every library and the natives,
// with the native load fix applied).
#r "../src/YoloSpp.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../src/YoloSpp.Cli/bin/Release/net10.0/YoloSpp.Fs.dll"
#r "../src/YoloSpp.Cli/bin/Release/net10.0/YoloSpp.CSharp.dll"
#r "../src/YoloSpp.Cli/bin/Release/net10.0/SkiaSharp.dll"

open System
open System.IO
open System.Runtime.InteropServices

// Load libtorch from the build output by full path before TorchSharp looks it up by name: a system-wide
// unversioned libtorch_cpu.so (e.g. Debian's libtorch-dev) would otherwise be picked up and fail to bind.
let private nativeDir =
    let rid =
        if RuntimeInformation.IsOSPlatform OSPlatform.Windows then
            "win-x64"
        elif RuntimeInformation.IsOSPlatform OSPlatform.OSX then
            "osx-arm64"
        else
            "linux-x64"

    Path.Combine(__SOURCE_DIRECTORY__, "..", "src", "YoloSpp.Cli", "bin", "Release", "net10.0", "runtimes", rid, "native")

if RuntimeInformation.IsOSPlatform OSPlatform.Linux then
    for lib in [ "libc10.so"; "libtorch_cpu.so"; "libtorch.so"; "libLibTorchSharp.so" ] do
        let path = Path.Combine(nativeDir, lib)

        if File.Exists path then
            NativeLibrary.Load path |> ignore

// fsi does not probe the build output's runtimes folder for SkiaSharp either: point its native import there
do
    let file =
        if OperatingSystem.IsWindows() then "libSkiaSharp.dll"
        elif OperatingSystem.IsMacOS() then "libSkiaSharp.dylib"
        else "libSkiaSharp.so"

    let rid =
        if OperatingSystem.IsMacOS() then
            "osx"
        else
            Path.GetFileName nativeDir
            |> fun _ -> Path.GetFileName(Path.GetDirectoryName nativeDir)

    let path =
        Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName nativeDir), rid, "native", file)

    NativeLibrary.SetDllImportResolver(
        typeof<SkiaSharp.SKBitmap>.Assembly,
        fun name _ _ ->
            if name.Contains "SkiaSharp" && File.Exists path then
                NativeLibrary.Load path
            else
                nativeint 0
    )

// the first torch.nn constructor does not load the natives by itself
YoloSpp.Platform.Backend.Initialize()
