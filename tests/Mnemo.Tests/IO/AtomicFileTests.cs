using Mnemo.IO;

namespace Mnemo.Tests.IO;

/// <summary>What an output path already is decides how it is written; a device node is never replaced.</summary>
public sealed class AtomicFileTests
{
    [Fact]
    public void A_regular_file_is_replaced_whole_and_no_temp_file_stays()
    {
        using var dir = new Tmp.Dir();
        File.WriteAllText(dir["out.txt"], "old");
        AtomicFile.WriteAllText(dir["out.txt"], "new");
        Assert.Equal("new", File.ReadAllText(dir["out.txt"]));
        Assert.Equal(["out.txt"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void A_symbolic_link_stays_a_link_and_its_target_is_replaced()
    {
        using var dir = new Tmp.Dir();
        File.WriteAllText(dir["target.txt"], "old");
        File.CreateSymbolicLink(dir["link.txt"], dir["target.txt"]);
        AtomicFile.WriteAllText(dir["link.txt"], "new");
        Assert.NotNull(new FileInfo(dir["link.txt"]).LinkTarget);
        Assert.Equal("new", File.ReadAllText(dir["target.txt"]));
    }

    [Theory]
    [InlineData("/dev/null")]
    [InlineData("/dev/zero")]
    public void A_character_device_is_written_in_place_and_stays_a_device(string device)
    {
        Assert.Equal(PathKind.Stream, Paths.KindOf(device));
        AtomicFile.WriteAllText(device, "bytes nobody keeps");
        Assert.Equal(PathKind.Stream, Paths.KindOf(device));
        Assert.Empty(Directory.GetFiles("/dev", Path.GetFileName(device) + ".tmp-*"));
    }

    [Fact]
    public void A_full_device_fails_with_an_io_error_and_stays_a_device()
    {
        Assert.ThrowsAny<IOException>(() => AtomicFile.WriteAllText("/dev/full", new string('x', 1 << 16)));
        Assert.Equal(PathKind.Stream, Paths.KindOf("/dev/full"));
    }

    [Fact]
    public void A_directory_is_refused_naming_the_path()
    {
        using var dir = new Tmp.Dir();
        var e = Assert.Throws<MnemoException>(() => AtomicFile.WriteAllText(dir.Path, "x"));
        Assert.StartsWith(dir.Path + ": exists and is not a regular file", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(dir.Path));
    }
}
