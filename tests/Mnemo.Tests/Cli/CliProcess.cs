using System.Diagnostics;

namespace Mnemo.Tests.Cli;

/// <summary>Runs the built `mnemo` CLI (copied beside the tests) in a fresh process, as a user would.</summary>
public static class CliProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "mnemo.dll");

    public static Process Start(string workDir, params string[] args) => Start(workDir, interruptible: false, args);

    /// <param name="interruptible">
    /// start mnemo with SIGINT at its default disposition. A process inherits ignored signals, and a shell that runs a job
    /// in the background without job control ignores SIGINT for it (`bash .ci/run &`): mnemo would then never hear the
    /// test's SIGINT. coreutils' env --default-signal=INT undoes that before it executes dotnet (same process id).
    /// </param>
    public static Process Start(string workDir, bool interruptible, params string[] args)
    {
        var info = new ProcessStartInfo(interruptible ? "env" : "dotnet")
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        if (interruptible) foreach (var a in new[] { "--default-signal=INT", "dotnet" }) info.ArgumentList.Add(a);
        info.ArgumentList.Add(Dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        return Process.Start(info)!;
    }

    public static (int ExitCode, string Stdout, string Stderr) Run(string workDir, params string[] args)
    {
        using var p = Start(workDir, args);
        return Finish(p, $"mnemo {string.Join(' ', args)}", TimeSpan.FromMinutes(3));
    }

    /// <summary>Runs another program (bash, dotnet pack, an installed tool) with extra environment variables.</summary>
    public static (int ExitCode, string Stdout, string Stderr) RunProgram(string workDir, string file, string[] args,
        IReadOnlyDictionary<string, string>? environment = null, int minutes = 3)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        using var p = Process.Start(info)!;
        return Finish(p, $"{file} {string.Join(' ', args)}", TimeSpan.FromMinutes(minutes));
    }

    static (int ExitCode, string Stdout, string Stderr) Finish(Process p, string what, TimeSpan limit)
    {
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{what} did not finish in {limit.TotalMinutes:0} minutes");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
