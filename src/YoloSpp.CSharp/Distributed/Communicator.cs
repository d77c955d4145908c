using System.Runtime.InteropServices;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace YoloSpp.Distributed;

/// <summary>
/// The processes of a data-parallel run: rank and size, and the collectives training needs. Tensors are float32
/// CPU tensors, contiguous (copy a CUDA tensor to the CPU first). Every rank must make the same calls in the same
/// order, as in MPI.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's rank, 0 to <see cref="Size"/> − 1.</summary>
    int Rank { get; }
    /// <summary>Number of processes.</summary>
    int Size { get; }
    /// <summary>What runs it: "single process", "OpenMPI", "MPICH-ABI MPI".</summary>
    string Name { get; }
    /// <summary>Sums <paramref name="tensor"/> over every rank, in place (every rank gets the sum).</summary>
    void AllReduceSum(Tensor tensor);
    /// <summary>Overwrites <paramref name="tensor"/> on every rank with the one of <paramref name="root"/>.</summary>
    void Broadcast(Tensor tensor, int root = 0);
    /// <summary>Returns once every rank has called it.</summary>
    void Barrier();
    /// <summary>Every rank's bytes, by rank (the lengths may differ).</summary>
    byte[][] AllGather(byte[] value);
    /// <summary>Ends every rank's process with <paramref name="code"/> (MPI_Abort), after flushing this one's console:
    /// what a rank that failed calls so that the others, waiting in a collective, do not wait for it forever.</summary>
    void Abort(int code);
}

/// <summary>Creating communicators, and collectives built on <see cref="ICommunicator"/>.</summary>
public static class Communicator
{
    /// <summary>Whether this process was started by an MPI launcher (OMPI_COMM_WORLD_RANK, PMI_RANK or PMIX_RANK set).</summary>
    public static bool IsMpiLaunch =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_RANK") is not null
        || Environment.GetEnvironmentVariable("PMI_RANK") is not null
        || Environment.GetEnvironmentVariable("PMIX_RANK") is not null;

    /// <summary>The number of processes the MPI launcher started (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_SIZE), 1 without one.</summary>
    public static int LaunchSize =>
        new[] { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE" }
            .Select(Environment.GetEnvironmentVariable)
            .Select(v => int.TryParse(v, out var n) ? n : 0)
            .FirstOrDefault(n => n > 0, 1);

    /// <summary>This process's rank among the ranks of its machine (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID or
    /// PMI_LOCAL_RANK); null without a launcher that says.</summary>
    public static int? LocalRank =>
        new[] { "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK" }
            .Select(Environment.GetEnvironmentVariable)
            .Select(v => int.TryParse(v, out var n) ? n : (int?)null)
            .FirstOrDefault(n => n is >= 0);

    /// <summary>The number of ranks on this process's machine (OMPI_COMM_WORLD_LOCAL_SIZE or MPI_LOCALNRANKS); null
    /// without a launcher that says.</summary>
    public static int? LocalSize =>
        new[] { "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS" }
            .Select(Environment.GetEnvironmentVariable)
            .Select(v => int.TryParse(v, out var n) ? n : (int?)null)
            .FirstOrDefault(n => n is > 0);

    /// <summary>
    /// The MPI communicator when the process runs under an MPI launcher (<c>mpirun</c>, <c>mpiexec</c>), else the
    /// single-process one, which needs no MPI installed.
    /// </summary>
    /// <exception cref="InvalidOperationException">An MPI launch whose MPI library cannot be loaded or initialised.</exception>
    public static ICommunicator FromEnvironment() => IsMpiLaunch ? MpiCommunicator.Initialize() : new SingleProcessCommunicator();

    /// <summary>Every rank's value, by rank (serialised as JSON: for small objects).</summary>
    public static T[] AllGather<T>(this ICommunicator comm, T value)
    {
        var parts = comm.AllGather(JsonSerializer.SerializeToUtf8Bytes(value));
        return parts.Select(p => JsonSerializer.Deserialize<T>(p)!).ToArray();
    }

    /// <summary>Averages <paramref name="tensor"/> over the ranks, in place.</summary>
    public static void AllReduceMean(this ICommunicator comm, Tensor tensor)
    {
        comm.AllReduceSum(tensor);
        if (comm.Size > 1)
            using (var s = (1.0 / comm.Size).ToScalar())
                tensor.mul_(s);
    }
}

/// <summary>One process: every collective is the identity.</summary>
public sealed class SingleProcessCommunicator : ICommunicator
{
    /// <inheritdoc/>
    public int Rank => 0;
    /// <inheritdoc/>
    public int Size => 1;
    /// <inheritdoc/>
    public string Name => "single process";
    /// <inheritdoc/>
    public void AllReduceSum(Tensor tensor) => MpiCommunicator.CheckTensor(tensor);
    /// <inheritdoc/>
    public void Broadcast(Tensor tensor, int root = 0)
    {
        MpiCommunicator.CheckTensor(tensor);
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} is not a rank of 1 process");
    }
    /// <inheritdoc/>
    public void Barrier() { }
    /// <inheritdoc/>
    public byte[][] AllGather(byte[] value) => [value.ToArray()];
    /// <inheritdoc/>
    public void Abort(int code)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        Environment.Exit(code);
    }
    /// <inheritdoc/>
    public void Dispose() { }
}

/// <summary>
/// MPI through its C API, bound at run time (no MPI package): OpenMPI's libmpi.so.40, whose handles are the
/// addresses of its exported globals (ompi_mpi_comm_world, ompi_mpi_float, …), or an MPICH-ABI library
/// (MPICH's libmpi.so.12, Intel MPI, MS-MPI's msmpi.dll) with MPICH's integer handles. MPI is initialised once per
/// process and finalised when the last communicator is disposed. An error in a collective aborts every rank
/// (MPI's default error handler), so a rank never waits for a dead one.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    // MPICH ABI (MPICH, Intel MPI, MS-MPI): integer handles
    const int MpichCommWorld = 0x44000000, MpichByte = 0x4c00010d, MpichInt = 0x4c000405, MpichFloat = 0x4c00040a, MpichSum = 0x58000003;

    static readonly object Gate = new();
    static MpiCommunicator? _shared;
    static int _users;

    readonly IntPtr _lib;
    readonly bool _openMpi;
    readonly IntPtr _comm, _byte, _int, _float, _sum;
    readonly delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int> _allreduce;
    readonly delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int> _bcast;
    readonly delegate* unmanaged<IntPtr, int> _barrier;
    readonly delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, int> _allgather;
    readonly delegate* unmanaged<int> _finalize;
    readonly delegate* unmanaged<IntPtr, int, int> _abort;
    bool _disposed;

    /// <inheritdoc/>
    public int Rank { get; }
    /// <inheritdoc/>
    public int Size { get; }
    /// <inheritdoc/>
    public string Name => _openMpi ? "OpenMPI" : "MPICH-ABI MPI";

    MpiCommunicator(IntPtr lib, bool openMpi)
    {
        (_lib, _openMpi) = (lib, openMpi);
        IntPtr Fn(string name) => NativeLibrary.TryGetExport(lib, name, out var p)
            ? p : throw new InvalidOperationException($"the MPI library has no {name}");
        IntPtr Handle(string global, int mpich) => openMpi
            ? (NativeLibrary.TryGetExport(lib, global, out var p) ? p : throw new InvalidOperationException($"OpenMPI's library has no {global}"))
            : mpich;
        _comm = Handle("ompi_mpi_comm_world", MpichCommWorld);
        _byte = Handle("ompi_mpi_byte", MpichByte);
        _int = Handle("ompi_mpi_int", MpichInt);
        _float = Handle("ompi_mpi_float", MpichFloat);
        _sum = Handle("ompi_mpi_op_sum", MpichSum);
        var initialized = (delegate* unmanaged<int*, int>)Fn("MPI_Initialized");
        var init = (delegate* unmanaged<int*, IntPtr*, int>)Fn("MPI_Init");
        _allreduce = (delegate* unmanaged<IntPtr, IntPtr, int, IntPtr, IntPtr, IntPtr, int>)Fn("MPI_Allreduce");
        _bcast = (delegate* unmanaged<IntPtr, int, IntPtr, int, IntPtr, int>)Fn("MPI_Bcast");
        _barrier = (delegate* unmanaged<IntPtr, int>)Fn("MPI_Barrier");
        _allgather = (delegate* unmanaged<IntPtr, int, IntPtr, IntPtr, int, IntPtr, IntPtr, int>)Fn("MPI_Allgather");
        _finalize = (delegate* unmanaged<int>)Fn("MPI_Finalize");
        _abort = (delegate* unmanaged<IntPtr, int, int>)Fn("MPI_Abort");
        var rankFn = (delegate* unmanaged<IntPtr, int*, int>)Fn("MPI_Comm_rank");
        var sizeFn = (delegate* unmanaged<IntPtr, int*, int>)Fn("MPI_Comm_size");
        int flag = 0;
        var finalized = (delegate* unmanaged<int*, int>)Fn("MPI_Finalized");
        Check(finalized(&flag), "MPI_Finalized");
        if (flag != 0) throw new InvalidOperationException("MPI was finalised in this process: it cannot be initialised again");
        Check(initialized(&flag), "MPI_Initialized");
        if (flag == 0) Check(init(null, null), "MPI_Init");
        int rank, size;
        Check(rankFn(_comm, &rank), "MPI_Comm_rank");
        Check(sizeFn(_comm, &size), "MPI_Comm_size");
        (Rank, Size) = (rank, size);
    }

    /// <summary>Loads and initialises MPI (once per process; later calls share it).</summary>
    /// <param name="library">The MPI library to load; default: libmpi.so.40 (OpenMPI), then libmpi.so.12 (MPICH) on
    /// Linux, msmpi.dll on Windows, libmpi.dylib on macOS.</param>
    /// <exception cref="InvalidOperationException">No MPI library loads, or MPI_Init fails.</exception>
    public static MpiCommunicator Initialize(string? library = null)
    {
        lock (Gate)
        {
            if (_shared is { } s) { _users++; return s; }
            var candidates = library is not null ? [library]
                : OperatingSystem.IsWindows() ? ["msmpi.dll"]
                : OperatingSystem.IsMacOS() ? new[] { "libmpi.40.dylib", "libmpi.dylib", "libmpi.12.dylib" }
                : ["libmpi.so.40", "libmpi.so.12", "libmpi.so"];
            foreach (var name in candidates)
            {
                if (!NativeLibrary.TryLoad(name, out var lib)) continue;
                var openMpi = NativeLibrary.TryGetExport(lib, "ompi_mpi_comm_world", out _);
                _shared = new MpiCommunicator(lib, openMpi);
                _users = 1;
                return _shared;
            }
            throw new InvalidOperationException(
                $"this process runs under an MPI launcher but no MPI library loads (tried {string.Join(", ", candidates)}); " +
                "install OpenMPI (apt-get install openmpi-bin libopenmpi-dev) or MS-MPI on Windows");
        }
    }

    static void Check(int code, string what)
    {
        if (code != 0) throw new InvalidOperationException($"{what} failed with MPI error {code}");
    }

    internal static void CheckTensor(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (t.dtype != ScalarType.Float32 || t.device_type != DeviceType.CPU || !t.is_contiguous())
            throw new ArgumentException(
                $"collectives take contiguous float32 CPU tensors; got {t.dtype} [{string.Join(", ", t.shape)}] on {t.device}", nameof(t));
        if (t.numel() > int.MaxValue)
            throw new ArgumentException($"tensor [{string.Join(", ", t.shape)}] has more than {int.MaxValue} elements", nameof(t));
    }

    /// <inheritdoc/>
    public void AllReduceSum(Tensor tensor)
    {
        CheckTensor(tensor);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (tensor.numel() == 0) return;
        fixed (byte* p = tensor.bytes)
            // MPI_IN_PLACE: OpenMPI's is (void*)1, MPICH's (void*)-1
            Check(_allreduce(_openMpi ? (IntPtr)1 : (IntPtr)(-1), (IntPtr)p, (int)tensor.numel(), _float, _sum, _comm), "MPI_Allreduce");
    }

    /// <inheritdoc/>
    public void Broadcast(Tensor tensor, int root = 0)
    {
        CheckTensor(tensor);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (root < 0 || root >= Size) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} is not a rank of {Size}");
        if (tensor.numel() == 0) return;
        fixed (byte* p = tensor.bytes)
            Check(_bcast((IntPtr)p, (int)tensor.numel(), _float, root, _comm), "MPI_Bcast");
    }

    /// <inheritdoc/>
    public void Barrier()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Check(_barrier(_comm), "MPI_Barrier");
    }

    /// <inheritdoc/>
    public byte[][] AllGather(byte[] value)
    {
        ArgumentNullException.ThrowIfNull(value);
        ObjectDisposedException.ThrowIf(_disposed, this);
        // the lengths first, then every value padded to the longest
        var lengths = new int[Size];
        int mine = value.Length;
        fixed (int* l = lengths)
            Check(_allgather((IntPtr)(&mine), 1, _int, (IntPtr)l, 1, _int, _comm), "MPI_Allgather");
        int max = lengths.Max();
        var padded = new byte[max];
        value.CopyTo(padded, 0);
        var all = new byte[(long)max * Size];
        if (max > 0)
            fixed (byte* s = padded)
            fixed (byte* r = all)
                Check(_allgather((IntPtr)s, max, _byte, (IntPtr)r, max, _byte, _comm), "MPI_Allgather");
        return Enumerable.Range(0, Size).Select(k => all.AsSpan(k * max, lengths[k]).ToArray()).ToArray();
    }

    /// <inheritdoc/>
    public void Abort(int code)
    {
        Console.Out.Flush();
        Console.Error.Flush();
        _abort(_comm, code);
        Environment.Exit(code);
    }

    /// <summary>Finalises MPI when the last user of this process's communicator disposes it.</summary>
    public void Dispose()
    {
        lock (Gate)
        {
            if (_disposed) return;
            if (--_users > 0) return;
            _disposed = true;
            _shared = null;
            _finalize();
        }
    }
}
