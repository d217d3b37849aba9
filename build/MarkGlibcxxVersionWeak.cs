#nullable disable
// MSBuild inline task (RoslynCodeTaskFactory): sets VER_FLG_WEAK on selected version requirements of an ELF64
// little-endian shared object, in place via a temp file + rename. See TorchSharpNativeFix.targets for why.
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class MarkGlibcxxVersionWeak : Task
{
    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();
    [Required] public string Versions { get; set; } = "";

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    public override bool Execute()
    {
        var wanted = new HashSet<string>(Versions.Split(new[] { ';' }, StringSplitOptions.RemoveEmptyEntries));
        foreach (var item in Files)
        {
            string path = item.ItemSpec;
            try
            {
                byte[] elf = File.ReadAllBytes(path);
                int changed = Patch(elf, wanted, out string problem);
                if (problem != null) { Log.LogWarning("{0}: not patched: {1}", path, problem); continue; }
                if (changed == 0) { Log.LogMessage(MessageImportance.Low, "{0}: already patched", path); continue; }
                string tmp = path + ".mnemo-tmp";
                File.WriteAllBytes(tmp, elf);
                File.Replace(tmp, path, null); // rename: never a half-written library, never a shared hardlink
                Log.LogMessage(MessageImportance.High, "Marked {0} version requirement(s) weak in {1}", changed, path);
            }
            catch (Exception e)
            {
                Log.LogError("Could not patch {0}: {1}", path, e.Message);
            }
        }
        return !Log.HasLoggedErrors;
    }

    // Returns how many requirements were newly marked weak; sets problem when the file is not what we expect.
    static int Patch(byte[] b, HashSet<string> wanted, out string problem)
    {
        problem = null;
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
        { problem = "not an ELF file"; return 0; }
        if (b[4] != 2 || b[5] != 1) { problem = "not ELF64 little-endian"; return 0; }
        ulong shoff = BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A), shnum = BitConverter.ToUInt16(b, 0x3C);
        if (shentsize < 64 || shoff + (ulong)(shentsize * shnum) > (ulong)b.Length) { problem = "bad section headers"; return 0; }

        int changed = 0, found = 0;
        for (int s = 0; s < shnum; s++)
        {
            int sh = checked((int)shoff + s * shentsize);
            if (BitConverter.ToUInt32(b, sh + 4) != ShtGnuVerneed) continue;
            long secOff = (long)BitConverter.ToUInt64(b, sh + 24);
            uint link = BitConverter.ToUInt32(b, sh + 40);
            int strSh = checked((int)shoff + (int)link * shentsize);
            long strOff = (long)BitConverter.ToUInt64(b, strSh + 24);

            long vn = secOff;
            while (true)
            {
                ushort cnt = BitConverter.ToUInt16(b, (int)vn + 2);
                uint aux = BitConverter.ToUInt32(b, (int)vn + 8), next = BitConverter.ToUInt32(b, (int)vn + 12);
                long va = vn + aux;
                for (int i = 0; i < cnt; i++)
                {
                    uint name = BitConverter.ToUInt32(b, (int)va + 8);
                    if (wanted.Contains(CString(b, strOff + name)))
                    {
                        found++;
                        ushort flags = BitConverter.ToUInt16(b, (int)va + 4);
                        if ((flags & VerFlgWeak) == 0)
                        {
                            flags |= VerFlgWeak;
                            b[va + 4] = (byte)flags; b[va + 5] = (byte)(flags >> 8);
                            changed++;
                        }
                    }
                    uint vnaNext = BitConverter.ToUInt32(b, (int)va + 12);
                    if (vnaNext == 0) break;
                    va += vnaNext;
                }
                if (next == 0) break;
                vn += next;
            }
        }
                return changed;
    }

    static string CString(byte[] b, long off)
    {
        int end = (int)off;
        while (end < b.Length && b[end] != 0) end++;
        return Encoding.ASCII.GetString(b, (int)off, end - (int)off);
    }
}
