// Loads the built YoloSpp libraries into an F# script: `#load "yolospp.fsx"` from a script in this folder.
// Build first: `dotnet fsi build.fsx build` (the runner's output folder holds every library and the natives,
// with the native load fix applied).
#r "../src/YoloSpp.Cli/bin/Release/net10.0/TorchSharp.dll"
#r "../src/YoloSpp.Cli/bin/Release/net10.0/YoloSpp.Fs.dll"
#r "../src/YoloSpp.Cli/bin/Release/net10.0/YoloSpp.CSharp.dll"

open System.IO
open System.Runtime.InteropServices

// Load libtorch from the build output by full path before TorchSharp looks it up by name: a system-wide
// unversioned libtorch_cpu.so (e.g. Debian's libtorch-dev) would otherwise be picked up and fail to bind.
let private nativeDir =
    let rid =
        if RuntimeInformation.IsOSPlatform OSPlatform.Windows then "win-x64"
        elif RuntimeInformation.IsOSPlatform OSPlatform.OSX then "osx-arm64"
        else "linux-x64"
    Path.Combine(__SOURCE_DIRECTORY__, "..", "src", "YoloSpp.Cli", "bin", "Release", "net10.0", "runtimes", rid, "native")

if RuntimeInformation.IsOSPlatform OSPlatform.Linux then
    for lib in [ "libc10.so"; "libtorch_cpu.so"; "libtorch.so"; "libLibTorchSharp.so" ] do
        let path = Path.Combine(nativeDir, lib)
        if File.Exists path then NativeLibrary.Load path |> ignore

// the first torch.nn constructor does not load the natives by itself
YoloSpp.Backend.Initialize()
