/// The host memory policy: under `keep` (the default on glibc) blocks up to 32 MiB come from the heap, whose freed
/// pages the next step reuses, instead of fresh mappings whose pages fault (and are zero-filled) on first touch.
module YoloSpp.Tests.HostMemoryTests

open System
open System.Runtime.InteropServices
open Expecto
open TorchSharp
open YoloSpp

open YoloSpp.Platform

type private DataPointer = delegate of nativeint -> nativeint

/// The address of a tensor's elements (LibTorchSharp's THSTensor_data, which TorchSharp does not make public).
let private dataPointer =
    lazy
        (let lib =
            NativeLibrary.Load("LibTorchSharp", typeof<torch.Tensor>.Assembly, Nullable DllImportSearchPath.SafeDirectories)

         Marshal.GetDelegateForFunctionPointer<DataPointer>(NativeLibrary.GetExport(lib, "THSTensor_data")))

/// glibc's chunk header of the tensor's block: its size field, the word just before the block (for an aligned block
/// too: memalign returns a chunk of its own): (size in bytes, served by a mapping of its own: the IS_MMAPPED bit 2).
let private chunkOf (t: torch.Tensor) =
    let p = dataPointer.Value.Invoke t.Handle
    let field = Marshal.ReadInt64(p - 8n)
    field &&& ~~~7L, field &&& 2L <> 0L

/// A tensor of `mib` MiB with every element written.
let private written (mib: int64) = torch.ones ([| mib <<< 18 |])

let tests =
    testList
        "host-memory"
        [
            test "YOLOSPP_MALLOC parses keep and system, and names itself when it cannot" {
                Expect.equal (HostMemory.Parse null) HostMemoryPolicy.Keep "unset"
                Expect.equal (HostMemory.Parse " Keep ") HostMemoryPolicy.Keep "keep"
                Expect.equal (HostMemory.Parse "system") HostMemoryPolicy.System "system"

                let message =
                    TestUtil.throwsMessage<ArgumentException> (fun () -> HostMemory.Parse "pool" |> ignore)

                Expect.stringContains message "YOLOSPP_MALLOC=pool" "names the variable and value"
                Expect.stringContains message "keep or system" "says what is allowed"
            }

            test "blocks up to 32 MiB come from the heap, not from mappings of their own (keep)" {
                if not (HostMemory.Description.Contains "glibc malloc") then
                    skiptest (sprintf "glibc's policy not in force: %s" HostMemory.Description)

                let chunk mib =
                    use t = written mib
                    chunkOf t

                let mib = 30L <<< 20
                let size, mapped = chunk 30L
                // the header read is glibc's: its size is the block's (plus at most the alignment slack)
                Expect.isTrue (size >= mib && size < mib + 65536L) (sprintf "chunk size %d for a 30 MiB block" size)
                // under glibc's defaults it is a mapping of its own (the threshold adapts only once such a block is freed)
                Expect.isFalse mapped "a 30 MiB block comes from the heap"
            }

            test "YOLOSPP_MALLOC=system leaves glibc as it is" {
                if HostMemory.RequestedPolicy <> HostMemoryPolicy.System then
                    skiptest "runs under YOLOSPP_MALLOC=system"

                Expect.stringContains HostMemory.Description "YOLOSPP_MALLOC=system" "says why"
            }
        ]
