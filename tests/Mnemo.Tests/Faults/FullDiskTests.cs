using System.Diagnostics;
using Mnemo.IO;
using Mnemo.Tests.Training;
using Mnemo.Training;
using Xunit.Abstractions;

namespace Mnemo.Tests.Faults;

/// <summary>
/// A disk that fills up mid-run: the write fails with an I/O error (the CLI's exit 2), and every checkpoint written
/// before it still loads. Needs a size-limited tmpfs, so it runs as root and says why it is skipped otherwise.
/// </summary>
[Collection(TorchCollection.Name)]
public sealed class FullDiskTests(ITestOutputHelper output)
{
    static bool Run(string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    [Fact]
    public void A_full_disk_fails_cleanly_and_keeps_earlier_checkpoints()
    {
        using var mountPoint = new Tmp.Dir();
        if (Environment.UserName != "root" || !Run("mount", $"-t tmpfs -o size=160k tmpfs {mountPoint.Path}"))
        {
            output.WriteLine("skipped: mounting a size-limited tmpfs needs root (and a kernel that allows it here)");
            return;
        }
        try
        {
            string run = Path.Combine(mountPoint.Path, "run");
            var config = TrainerTests.Tiny(400) with
            {
                Training = TrainerTests.Tiny().Training with { Steps = 400, CheckpointEvery = 1, KeepCheckpoints = 1000, EvalEvery = 1000 },
            };
            var e = Assert.ThrowsAny<IOException>(() => new Trainer(config, run).Run(resume: false));
            output.WriteLine($"stopped by: {e.Message}");
            var kept = Checkpoint.List(run);
            Assert.NotEmpty(kept);
            foreach (var dir in kept)                                                   // every one loads whole
            {
                Checkpoint.ReadState(dir);
                SafeTensors.Read(Path.Combine(dir, Checkpoint.ModelFile));
                SafeTensors.Read(Path.Combine(dir, Checkpoint.OptimizerFile));
            }
            Assert.Empty(Directory.GetFileSystemEntries(run, "*tmp-*", SearchOption.AllDirectories));  // no temp file or folder left
        }
        finally
        {
            Run("umount", mountPoint.Path);
        }
    }
}
