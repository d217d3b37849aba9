using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mnemo.Sweeps;

/// <summary>
/// The shared book-keeping of a sweep folder, safe for several worker processes:
/// <list type="bullet">
/// <item><c>results.jsonl</c>: one JSON line per finished run, appended, never rewritten. A run whose id has a line
/// is done; a line cut short by a kill is ignored on reading (and its run done again).</item>
/// <item><c>claims/RUN.claim</c>: "pid host process-start worker-id claimed-at" of the worker training a run. A claim
/// whose process is gone (same host; a reused pid shows a different start time) is stale and taken over; the run then
/// resumes from its last checkpoint.</item>
/// <item><c>.lock</c>: an exclusive lock (flock through FileShare.None) held only while claiming or appending, so
/// the read-decide-write steps of two workers never interleave.</item>
/// </list>
/// </summary>
sealed class SweepLedger
{
    public const string ResultsFile = "results.jsonl";
    readonly string _dir;
    /// <summary>This ledger's worker: pid, host, the process's start time (so a reused pid is told apart) and an id of
    /// its own (so two ledgers in one process, e.g. tests, do not mistake each other's claims for their own).</summary>
    readonly string _me = $"{Environment.ProcessId} {Environment.MachineName} " +
        $"{ProcessStart(Process.GetCurrentProcess())} {Guid.NewGuid():N}";

    public SweepLedger(string dir)
    {
        _dir = dir;
        Directory.CreateDirectory(Path.Combine(dir, "claims"));
    }

    public string ResultsPath => Path.Combine(_dir, ResultsFile);

    string ClaimPath(SweepRun run) => Path.Combine(_dir, "claims", run.Folder + ".claim");

    static long ProcessStart(Process p)
    {
        try { return p.StartTime.ToUniversalTime().Ticks; }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { return 0; }
    }

    /// <summary>Ids of runs with a complete result line.</summary>
    public HashSet<string> Finished() => ReadResults(ResultsPath).Select(r => r["id"]!.GetValue<string>()).ToHashSet();

    /// <summary>
    /// Every complete line of a results file, the first per run id (an incomplete line left by a kill is skipped; a
    /// repeated id, which only a hand-merged file can hold, keeps its first result). A complete line without the
    /// fields every result has is an error naming the line.
    /// </summary>
    public static List<JsonObject> ReadResults(string path)
    {
        var lines = new List<JsonObject>();
        if (!File.Exists(path)) return lines;
        var seen = new HashSet<string>();
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        int number = 0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (line.Length == 0) continue;
            JsonObject? o;
            try { o = JsonNode.Parse(line) as JsonObject; }
            catch (JsonException) { continue; } // a line cut short by a kill
            if (o?["id"] is not JsonValue id || id.GetValueKind() != JsonValueKind.String)
                throw new MnemoException($"{path} line {number}: not a sweep result (no string \"id\")");
            if (seen.Add(id.GetValue<string>())) lines.Add(o);
        }
        return lines;
    }

    /// <summary>
    /// Claims a run for this process unless it is finished or another live worker holds it. A stale claim (its
    /// process gone) is taken over. Returns false when the run is not this worker's to do.
    /// </summary>
    public bool TryClaim(SweepRun run) => Locked(() =>
    {
        if (Finished().Contains(run.Id)) return false;
        string path = ClaimPath(run);
        if (File.Exists(path) && IsLive(File.ReadAllText(path))) return false;
        IO.AtomicFile.WriteAllText(path, $"{_me} {DateTime.UtcNow:O}");
        return true;
    });

    /// <summary>Drops this worker's claim (after the result is appended, or when the run is interrupted).</summary>
    public void Release(SweepRun run) => Locked(() =>
    {
        string path = ClaimPath(run);
        if (File.Exists(path) && File.ReadAllText(path).StartsWith(_me + " ", StringComparison.Ordinal)) File.Delete(path);
        return true;
    });

    /// <summary>Appends one result line and flushes it to disk.</summary>
    public void Append(JsonObject result) => Locked(() =>
    {
        using var stream = new FileStream(ResultsPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        // A previous writer killed mid-line left no newline: start on a fresh line so this one parses.
        byte[] line = Encoding.UTF8.GetBytes((EndsMidLine() ? "\n" : "") + result.ToJsonString() + "\n");
        stream.Write(line);
        stream.Flush(flushToDisk: true);
        return true;
    });

    bool EndsMidLine()
    {
        var info = new FileInfo(ResultsPath);
        if (!info.Exists || info.Length == 0) return false;
        using var s = new FileStream(ResultsPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        s.Seek(-1, SeekOrigin.End);
        return s.ReadByte() != '\n';
    }

    /// <summary>Runs claimed by live workers other than this one (for "N runs in progress elsewhere").</summary>
    public int ClaimedElsewhere() => Locked(() => Directory.EnumerateFiles(Path.Combine(_dir, "claims"), "*.claim")
        .Count(f => { string c = File.ReadAllText(f); return IsLive(c) && !c.StartsWith(_me + " ", StringComparison.Ordinal); }));

    /// <summary>
    /// A claim is live when its process still runs on this host (same pid and same start time: a pid reused by a new
    /// process, e.g. after a container restart, is not the claimant), or when it was made on another host, whose
    /// processes this one cannot see: such a claim stands until its file is deleted by hand.
    /// </summary>
    static bool IsLive(string claim)
    {
        string[] parts = claim.Split(' ');
        if (parts.Length < 3 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) return false;
        if (parts[1] != Environment.MachineName) return true;
        try
        {
            using var p = Process.GetProcessById(pid);
            // Start times are derived from the boot time, which each process computes with its own jitter: the same
            // process reads within a second of itself, a process that reused the pid started later.
            return !p.HasExited && long.TryParse(parts[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out long start)
                && Math.Abs(ProcessStart(p) - start) < TimeSpan.TicksPerSecond;
        }
        catch (ArgumentException) { return false; }
    }

    /// <summary>Runs body holding the sweep's lock (e.g. writing the report once, when two workers finish together).</summary>
    public T Locked<T>(Func<T> body)
    {
        string path = Path.Combine(_dir, ".lock");
        for (int attempt = 0; ; attempt++)
        {
            FileStream? held = null;
            try { held = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (attempt < 6000) { Thread.Sleep(10); continue; } // another worker holds it (≤ 60 s)
            using (held) return body();
        }
    }
}
