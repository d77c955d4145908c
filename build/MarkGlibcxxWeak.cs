using System;
using System.IO;
using System.Text;

// MSBuild inline task (RoslynCodeTaskFactory): marks one GLIBCXX version requirement of an ELF64 shared
// library as weak when the system libstdc++ does not provide it. See NativeFix.targets for why.
public class YoloSppMarkGlibcxxWeak : Microsoft.Build.Utilities.Task
{
    [Microsoft.Build.Framework.Required] public Microsoft.Build.Framework.ITaskItem[] Files { get; set; }
    [Microsoft.Build.Framework.Required] public string Version { get; set; }

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    static readonly string[] LibDirs =
    {
        "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib",
        "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/local/lib", "/usr/local/lib64",
    };

    public override bool Execute()
    {
        if (SystemHasVersion()) return true;
        foreach (var item in Files)
        {
            var path = item.GetMetadata("FullPath");
            try
            {
                if (Patch(path))
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High,
                        "YoloSpp: system libstdc++ lacks " + Version + "; marked it weak in " + path);
            }
            catch (Exception e)
            {
                Log.LogError("YoloSpp: cannot patch " + path + ": " + e.Message);
                return false;
            }
        }
        return !Log.HasLoggedErrors;
    }

    bool SystemHasVersion()
    {
        var needle = Encoding.ASCII.GetBytes(Version + "\0");
        foreach (var dir in LibDirs)
        {
            var lib = Path.Combine(dir, "libstdc++.so.6");
            if (File.Exists(lib) && IndexOf(File.ReadAllBytes(lib), needle) >= 0) return true;
        }
        return false;
    }

    static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
        {
            int k = 0;
            while (k < needle.Length && hay[i + k] == needle[k]) k++;
            if (k == needle.Length) return i;
        }
        return -1;
    }

    // Returns true when the file was changed. Written to a temp file and renamed, so a hard link into the
    // NuGet cache (if MSBuild ever made one) is never modified.
    bool Patch(string path)
    {
        var b = File.ReadAllBytes(path);
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (b[4] != 2 || b[5] != 1) throw new InvalidDataException("not a little-endian ELF64 file");
        ulong shoff = BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        bool changed = false;
        for (int s = 0; s < shnum; s++)
        {
            long sh = (long)shoff + (long)s * shentsize;
            if (BitConverter.ToUInt32(b, (int)sh + 4) != ShtGnuVerneed) continue;
            long off = (long)BitConverter.ToUInt64(b, (int)sh + 0x18);
            uint link = BitConverter.ToUInt32(b, (int)sh + 0x28);
            uint count = BitConverter.ToUInt32(b, (int)sh + 0x2C);
            long strtab = (long)BitConverter.ToUInt64(b, (int)((long)shoff + (long)link * shentsize + 0x18));
            long vn = off;
            for (uint n = 0; n < count; n++)
            {
                int cnt = BitConverter.ToUInt16(b, (int)vn + 2);
                long aux = vn + BitConverter.ToUInt32(b, (int)vn + 8);
                for (int k = 0; k < cnt; k++)
                {
                    ushort flags = BitConverter.ToUInt16(b, (int)aux + 4);
                    uint name = BitConverter.ToUInt32(b, (int)aux + 8);
                    if (CString(b, strtab + name) == Version && (flags & VerFlgWeak) == 0)
                    {
                        var nf = BitConverter.GetBytes((ushort)(flags | VerFlgWeak));
                        b[aux + 4] = nf[0]; b[aux + 5] = nf[1];
                        changed = true;
                    }
                    aux += BitConverter.ToUInt32(b, (int)aux + 12);
                }
                uint next = BitConverter.ToUInt32(b, (int)vn + 12);
                if (next == 0) break;
                vn += next;
            }
        }
        if (!changed) return false;
        // Keep mode (File.Copy preserves it) and timestamp, so MSBuild's incremental copy (size + time) sees the
        // file as up to date; File.Replace renames the temp file over the original.
        var tmp = path + ".yolospp-tmp";
        var time = File.GetLastWriteTimeUtc(path);
        File.Copy(path, tmp, true);
        using (var f = new FileStream(tmp, FileMode.Open, FileAccess.Write)) f.Write(b, 0, b.Length);
        File.SetLastWriteTimeUtc(tmp, time);
        File.Replace(tmp, path, null);
        return true;
    }

    static string CString(byte[] b, long at)
    {
        long end = at;
        while (end < b.Length && b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)at, (int)(end - at));
    }
}
