using System.CommandLine;
using System.Globalization;
using Mnemo.Benchmarks;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Memory.Deep;
using Mnemo.Runtime;
using Mnemo.Sweeps;
using Mnemo.Tools;
using Mnemo.Training;
using Spectre.Console;

namespace Mnemo.Cli.Commands;

/// <summary>`mnemo bench …`: speed measurements (never tests). The numbers come from the library's Benchmarks.</summary>
static class BenchCommand
{
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create()
    {
        var command = new Command("bench", "Measure speed: kernels against the machine's matmul peak and against the step-loop " +
            "and attention baselines.");
        command.Subcommands.Add(Kernels());
        command.Subcommands.Add(Decode());
        command.Subcommands.Add(Train());
        return command;
    }

    static Option<int> ThreadsOption() => new("--threads")
    {
        Description = "libtorch threads (0 = libtorch's default: all cores)",
        DefaultValueFactory = _ => 0,
    };

    static Option<string> JsonOption(string file) => new("--json")
    {
        Description = "Where to write all numbers as JSON",
        DefaultValueFactory = _ => file,
    };

    static Command Kernels()
    {
        var dims = new Option<string[]>("--dims")
        {
            Description = "Head sizes D (Dk = Dv = D), e.g. --dims 64 128 or 64,128. Default: 64 128",
            AllowMultipleArgumentsPerToken = true,
        };
        var lengths = new Option<string[]>("--lengths")
        {
            Description = "Sequence lengths T. Default: 1024 4096 16384",
            AllowMultipleArgumentsPerToken = true,
        };
        var rules = new Option<string[]>("--rules")
        {
            Description = $"Matrix rules to measure: {string.Join(", ", BenchRule.All.Select(r => r.Name))}, or none. Default: all",
            AllowMultipleArgumentsPerToken = true,
        };
        var deepRules = new Option<string[]>("--deep-rules")
        {
            Description = $"Deep-memory rules to measure: {string.Join(", ", DeepMemoryRule.Named.Keys)}, or none. Default: all",
            AllowMultipleArgumentsPerToken = true,
        };
        var depth = new Option<int?>("--depth") { Description = "Layers of the deep rules' memory MLP. Default: 2" };
        var hidden = new Option<long?>("--hidden") { Description = "Hidden width of the deep rules' memory MLP. Default: 4·D" };
        var deepMemory = new Option<double?>("--deep-memory-gb")
        {
            Description = "A deep rule's form is timed at the longest T (halving) whose estimated autograd footprint fits this many GB, " +
                          "and scaled linearly to the row's T (the table says so). Default: 4",
        };
        var repeats = new Option<int?>("--repeats")
        {
            Description = "Timed runs per measurement; the median is reported. Default: 3 (1 with --quick)",
        };
        var warmup = new Option<int?>("--warmup") { Description = "Untimed runs before them. Default: 1" };
        var chunk = new Option<int?>("--chunk-size") { Description = "Chunk size of the chunk forms. Default: 64 (16 with --quick)" };
        var stepMax = new Option<int?>("--step-max-length")
        {
            Description = "Time the step loop at most this long and extrapolate linearly to longer T (marked *). Default: 1024",
        };
        var noAttention = new Option<bool>("--no-attention") { Description = "Skip the causal SDPA attention baseline" };
        var threads = ThreadsOption();
        var json = JsonOption("bench-kernels.json");
        var quick = new Option<bool>("--quick")
        {
            Description = "Tiny shapes for a smoke test (B=2, H=2, D=16, T=64,256); explicit options still apply",
        };
        var command = new Command("kernels",
            "Time the matrix- and deep-memory kernels (chunk form, step loop, naive reference) and causal SDPA attention, forward and " +
            "forward+backward, against the fp32/bf16 matmul peak measured in the same run. Prints a table; writes JSON.")
        {
            dims, lengths, rules, deepRules, depth, hidden, deepMemory, repeats, warmup, chunk, stepMax, noAttention, threads, json, quick,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            var o = parse.GetValue(quick) ? KernelBenchOptions.Quick : new KernelBenchOptions();
            if (Ints(parse.GetValue(dims), "--dims") is { } d) o = o with { Dims = d };
            if (Ints(parse.GetValue(lengths), "--lengths") is { } l) o = o with { Lengths = l };
            if (Split(parse.GetValue(rules)) is { } r)
                o = o with { Rules = None(r) ? [] : [.. r.Select(name => BenchRule.Parse(name)).Distinct()] };
            if (Split(parse.GetValue(deepRules)) is { } dr) o = o with { DeepRules = None(dr) ? [] : [.. dr.Select(DeepRule).Distinct()] };
            if (parse.GetValue(depth) is int layers) o = o with { Depth = layers };
            if (parse.GetValue(hidden) is long width) o = o with { DeepHidden = width };
            if (parse.GetValue(deepMemory) is double gb) o = o with { DeepMemoryBudgetBytes = gb * (1 << 30) };
            if (parse.GetValue(repeats) is int n) o = o with { Repeats = n };
            if (parse.GetValue(warmup) is int w) o = o with { Warmup = w };
            if (parse.GetValue(chunk) is int c) o = o with { ChunkSize = c };
            if (parse.GetValue(stepMax) is int s) o = o with { StepMaxLength = s, NaiveMaxLength = s };
            if (parse.GetValue(noAttention)) o = o with { Attention = false };
            o.Validate();
            // Huge pages for the deep rules' gigabyte temporaries at long T; they slow the matrix rules' calls down
            // (docs/architecture.md#the-native-allocator), so a run without deep rules goes without them.
            TorchRuntime.Initialise(parse.GetValue(threads), hugePages: o.DeepRules.Length > 0);
            string jsonPath = parse.GetValue(json)!;

            var report = KernelBenchmark.Run(o, message => Console.Error.WriteLine(message));
            report.WriteJson(jsonPath);
            KernelTable(report);
            Console.WriteLine($"JSON: {Path.GetFullPath(jsonPath)}");
            return 0;
        }));
        return command;
    }

    static Command Decode()
    {
        var contexts = new Option<string[]>("--contexts")
        {
            Description = "Context lengths (k = 1024, M = 1048576), e.g. --contexts 1k 16k 256k 1M. Default: 1k 16k 256k 1M",
            AllowMultipleArgumentsPerToken = true,
        };
        var rules = new Option<string[]>("--rules")
        {
            Description = $"Rules whose step form to measure: {string.Join(", ", BenchRule.Kernels.Select(r => r.Name))}. Default: all",
            AllowMultipleArgumentsPerToken = true,
        };
        var dim = new Option<int?>("--dim") { Description = "Head size D (Dk = Dv = D). Default: 64 (16 with --quick)" };
        var heads = new Option<int?>("--heads") { Description = "Heads H. Default: 4 (2 with --quick); batch is 1" };
        var tokens = new Option<int?>("--tokens")
        {
            Description = "Timed tokens per measurement (fewer for attention beyond 16k). Default: 100 (5 with --quick)",
        };
        var noAttention = new Option<bool>("--no-attention") { Description = "Skip the attention KV-cache baseline" };
        var threads = ThreadsOption();
        var json = JsonOption("bench-decode.json");
        var quick = new Option<bool>("--quick")
        {
            Description = "Tiny shapes for a smoke test (H=2, D=16, contexts 256, 1024); explicit options still apply",
        };
        var model = new Option<bool>("--model")
        {
            Description = "Model-level decode instead: LanguageModel.Step of 2-layer recurrent models (context really prefilled) vs an " +
                "attention model with a KV cache (d_model = H·D)",
        };
        var modelMixers = new Option<string[]>("--mixers")
        {
            Description = "With --model: the models' mixers. Default: gated_delta_net mamba2 attention",
            AllowMultipleArgumentsPerToken = true,
        };
        var landmarkBlock = new Option<int?>("--landmark-block")
        {
            Description = "With --model: also measure an attention model with a landmark token after every N tokens " +
                "(docs/mechanisms.md#landmark-attention), each decoded token reading --landmark-top-k blocks",
        };
        var landmarkTopK = new Option<int>("--landmark-top-k")
        {
            Description = "Blocks each token retrieves", DefaultValueFactory = _ => 2,
        };
        var command = new Command("decode",
            "Kernel-level decode: per-token latency of one matrix-memory step (constant-size state) versus one attention step " +
            "over a KV cache of growing context (1k … 1M tokens), with process memory. No model around the kernels.")
        {
            contexts, rules, dim, heads, tokens, noAttention, threads, json, quick, model, modelMixers, landmarkBlock, landmarkTopK,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            TorchRuntime.Initialise(parse.GetValue(threads));
            var o = parse.GetValue(quick) ? DecodeBenchOptions.Quick : new DecodeBenchOptions();
            if (Split(parse.GetValue(contexts)) is { } c) o = o with { Contexts = [.. c.Select(Length)] };
            if (Split(parse.GetValue(rules)) is { } r)
                o = o with { Rules = [.. r.Select(n => BenchRule.Parse(n, kernelsOnly: true)).Distinct()] };
            if (parse.GetValue(dim) is int d) o = o with { Dim = d };
            if (parse.GetValue(heads) is int h) o = o with { Heads = h };
            if (parse.GetValue(tokens) is int n) o = o with { Tokens = n };
            if (parse.GetValue(noAttention)) o = o with { Attention = false };
            o.Validate();
            string jsonPath = parse.GetValue(json)!;
            if (parse.GetValue(model))
            {
                var mixerKinds = Split(parse.GetValue(modelMixers))?.Select(n => Named<MixerKind>("mixer", n)).Distinct().ToArray();
                var landmark = parse.GetValue(landmarkBlock) is int block
                    ? new AttentionConfig { LandmarkBlock = block, LandmarkTopK = parse.GetValue(landmarkTopK) } : null;
                if (landmark is not null && (landmark.LandmarkBlock < 1 || landmark.LandmarkTopK < 1))
                    throw new MnemoException("--landmark-block and --landmark-top-k must be ≥ 1");
                var rows = ModelDecodeBenchmark.Run(o.Contexts, o.Tokens, o.Heads * o.Dim, layers: 2, o.Heads,
                    message => Console.Error.WriteLine(message), mixerKinds, landmark);
                AtomicFile.WriteAllText(jsonPath, System.Text.Json.JsonSerializer.Serialize(
                    new { method = "model-level decode (see ModelDecodeBenchmark)", machine = MachineInfo.Capture(), rows },
                    KernelBenchReport.JsonOptions) + "\n");
                ModelDecodeTable(rows, o.Heads * o.Dim);
                Console.WriteLine($"JSON: {Path.GetFullPath(jsonPath)}");
                return 0;
            }

            var report = DecodeBenchmark.Run(o, message => Console.Error.WriteLine(message));
            report.WriteJson(jsonPath);
            DecodeTable(report);
            Console.WriteLine($"JSON: {Path.GetFullPath(jsonPath)}");
            return 0;
        }));
        return command;
    }

    static Command Train()
    {
        var config = new Option<string?>("--config", "-c")
        {
            Description = "Run config file or preset whose model, data and training settings are timed. Default: the demo sweep's base " +
                "(MQAR V 256, L 64, d_model 64, 2 layers, batch 64)",
        };
        var mixers = new Option<string[]>("--mixers")
        {
            Description = "Mixers swapped into that config, one row each. " +
                "Default: attention linear_attention gated_delta_net mamba2 titans",
            AllowMultipleArgumentsPerToken = true,
        };
        var set = new Option<string[]>("--set")
        {
            Description = "Override a field of the config before the mixer, e.g. --set training.batch_size=32 (repeatable)",
        };
        var steps = new Option<int>("--steps")
        {
            Description = "Timed steps per mixer; medians are reported",
            DefaultValueFactory = _ => 10,
        };
        var warmup = new Option<int>("--warmup")
        {
            // .NET compiles a method fully optimised after about 60 calls (30 quickly compiled, 30 instrumented for
            // profile-guided optimisation); most of a step's code runs once per step (docs/benchmarks.md#bench-train-whole-training-steps).
            Description = "Untimed steps before them: enough for .NET's tiered JIT to optimise the per-step code",
            DefaultValueFactory = _ => 100,
        };
        var precisions = new Option<string[]>("--precisions")
        {
            Description = "Precisions each mixer is timed in, one row each, with the speed-up over fp32 measured in the same run: " +
                "fp32, bf16 (training.precision; docs/architecture.md#bf16-matmuls). Default: fp32",
            AllowMultipleArgumentsPerToken = true,
        };
        var threads = ThreadsOption();
        var json = JsonOption("bench-train.json");
        var command = new Command("train",
            "Time whole training steps (the trainer's own step: data, forward, backward, optimizer) of each mixer in one run config, " +
            "with tokens/s and dense-layer FLOP/s against the matmul peak measured in the same run, per precision. Prints a table; " +
            "writes JSON.")
        {
            config, mixers, set, steps, warmup, precisions, threads, json,
        };
        command.SetAction(parse => CliErrors.Run(parse, () =>
        {
            TorchRuntime.Initialise(parse.GetValue(threads));
            var (baseConfig, source) = parse.GetValue(config) is { } name
                ? (RunConfig.Load(name), name)
                : (SweepConfig.Load("demo").Base, "the demo sweep's base config");
            var names = Split(parse.GetValue(mixers)) ?? ["attention", "linear_attention", "gated_delta_net", "mamba2", "titans"];
            var modes = (Split(parse.GetValue(precisions)) ?? ["fp32"]).Select(n => Named<Precision>("precision", n)).ToArray();
            var settings = new TrainBenchSettings(source, names, parse.GetValue(set) ?? [], parse.GetValue(warmup), parse.GetValue(steps),
                modes);
            var report = TrainStepBenchmark.Run(baseConfig, settings, message => Console.Error.WriteLine(message));
            string jsonPath = parse.GetValue(json)!;
            report.WriteJson(jsonPath);
            TrainTable(report);
            Console.WriteLine($"JSON: {Path.GetFullPath(jsonPath)}");
            return 0;
        }));
        return command;
    }

    public static void TrainTable(TrainBenchReport r)
    {
        Wide();
        var m = r.Machine;
        Console.WriteLine($"machine  {m.Cpu}; {m.LogicalCores} logical cores; {m.TorchThreads} libtorch threads; libtorch {m.Libtorch}");
        Console.WriteLine(string.Create(Inv, $"load     1-min load average {Show(m.LoadAverageAtStart)} before the run, " +
            $"{Show(r.LoadAverageAtEnd)} at its end"));
        BusyWarning(m);
        string bf16 = r.PeakBf16 is { } b ? string.Create(Inv, $"; bf16 matmul {b.GflopPerSecond:F1} GFLOP/s (n={b.BestN})") : "";
        Console.WriteLine(string.Create(Inv, $"peak     fp32 matmul {r.PeakFp32.GflopPerSecond:F1} GFLOP/s (n={r.PeakFp32.BestN}){bf16}"));
        if (r.PeakBf16 is not null) Console.WriteLine($"bf16     {m.Bf16Support}");
        var s = r.Settings;
        string sets = s.Sets.Length == 0 ? "" : $", with {string.Join(" ", s.Sets)}";
        Console.WriteLine(string.Create(Inv, $"config   {s.Source}{sets}; {s.Warmup} warm-up + median of {s.Steps} steps"));
        var table = new Table().AddColumns("mixer", "precision", "parameters", "tokens/step", "step ms", "tokens/s", "× fp32", "data ms",
            "forward ms", "of it kernel", "backward ms", "of it kernel", "optimizer ms", "dense GFLOP/s", "% peak");
        foreach (int i in Enumerable.Range(2, 13)) table.Columns[i].RightAligned();
        foreach (var row in r.Rows)
            table.AddRow(row.Mixer, Names.Of(row.Precision), row.Parameters.ToString("N0", Inv), row.TokensPerStep.ToString(Inv),
                Ms(row.StepMs), Rate(row.TokensPerSecond), row.SpeedupOverFp32 is { } x ? string.Create(Inv, $"×{x:F2}") : "",
                Ms(row.DataMs), Ms(row.ForwardMs), Ms(row.KernelForwardMs), Ms(row.BackwardMs), Ms(row.KernelBackwardMs),
                Ms(row.OptimizerMs), row.DenseGflopPerSecond.ToString("F1", Inv), Percent(row.FractionOfPeak));
        AnsiConsole.Write(table);
        Console.WriteLine("kernel: the sequence kernels' share (memory kernels, attention); the rest of forward and backward is " +
            "projections, convolutions, norms, MLPs, head, loss and the framework's own overhead.");
        Console.WriteLine("% peak: against the matmul peak of the row's precision; × fp32: tokens/s against the same mixer's fp32 row.");
        var estimates = r.Rows.Where(row => row.Bf16Estimate is not null).ToList();
        if (estimates.Count > 0 && r.PeakBf16 is { } peak16)
            Console.WriteLine(string.Create(Inv, $"bf16 estimate: the × fp32 if only the dense products ran faster, by the peaks' ratio " +
                $"r = {peak16.GflopPerSecond / r.PeakFp32.GflopPerSecond:F2}: 1 / (1 − f + f/r), f = the fp32 row's % peak: ") +
                string.Join(", ", estimates.Select(row => string.Create(Inv, $"{row.Mixer} ×{row.Bf16Estimate:F2}"))) +
                " (docs/architecture.md#bf16-matmuls)");
        Console.WriteLine($"FLOP model: {r.FlopModel}");
        Console.WriteLine(string.Create(Inv, $"took {r.ElapsedSeconds:F1} s"));
    }

    static bool None(string[] names) => names is ["none" or "None" or "NONE"];

    /// <summary>An enum value as configs name it ("gated_delta_net", "bf16"); <paramref name="what"/> names it in the error.</summary>
    static T Named<T>(string what, string name) where T : struct, Enum => ConfigBinder.EnumNamed(typeof(T), name.Trim()) as T?
        ?? throw Names.Unknown(what, name, Enum.GetValues<T>().Select(v => Names.Of(v)));

    static DeepMemoryRule DeepRule(string name) => DeepKernelFile.TryRule(name)
        ?? throw Names.Unknown("deep rule", name, DeepMemoryRule.Named.Keys.Append("none"));

    /// <summary>"4096", "16k" (×1024) or "1M" (×1048576).</summary>
    static long Length(string text)
    {
        string t = text.Trim();
        long unit = t.EndsWith('k') || t.EndsWith('K') ? 1024 : t.EndsWith('M') || t.EndsWith('m') ? 1024 * 1024 : 1;
        string digits = unit == 1 ? t : t[..^1];
        return long.TryParse(digits, NumberStyles.Integer, Inv, out long n) && n > 0
            ? checked(n * unit)
            : throw new MnemoException($"--contexts: \"{text}\" is not a length such as 4096, 16k or 1M");
    }

    static void ModelDecodeTable(List<ModelDecodeRow> rows, int dModel)
    {
        Wide();
        Console.WriteLine($"model-level decode: 2 layers, d_model {dModel}, SwiGLU MLP, vocab 512, batch 1, fp32, no_grad; " +
            $"2 warm-up tokens + median");
        var table = new Table().AddColumns("model", "context", "ms/token", "best ms", "cache MB", "process RSS MB", "context filled by",
            "prefill tok/s", "heap releases");
        foreach (int i in Enumerable.Range(2, 4)) table.Columns[i].RightAligned();
        foreach (var r in rows)
            table.AddRow(r.Model, Context(r.Context), r.MsPerToken.ToString("F3", Inv), r.BestMsPerToken.ToString("F3", Inv),
                (r.CacheBytes / 1048576.0).ToString("F2", Inv), (r.WorkingSetBytes / 1048576.0).ToString("F0", Inv), r.Fill,
                r.PrefillTokensPerSecond is { } p ? Rate(p) : "", r.HeapReleases?.ToString(Inv) ?? "");
        AnsiConsole.Write(table);
    }

    public static void DecodeTable(DecodeBenchReport r)
    {
        Wide();
        var m = r.Machine;
        var o = r.Settings;
        Console.WriteLine($"machine  {m.Cpu}; {m.LogicalCores} logical cores; {m.TorchThreads} libtorch threads; libtorch {m.Libtorch}");
        Console.WriteLine(string.Create(Inv, $"load     1-min load average {Show(m.LoadAverageAtStart)} before the run, " +
            $"{Show(r.LoadAverageAtEnd)} at its end"));
        BusyWarning(m);
        Console.WriteLine(string.Create(Inv, $"shapes   kernel-level decode, B={o.Batch} H={o.Heads} Dk=Dv=D={o.Dim}, fp32, no_grad; " +
            $"{o.Warmup} warm-up tokens + median over the timed tokens"));
        var table = new Table().AddColumns("context", "kind", "tokens timed", "ms/token", "tokens/s", "state or cache MB",
            "process RSS MB");
        foreach (int i in Enumerable.Range(2, 5)) table.Columns[i].RightAligned();
        long? last = null;
        foreach (var row in r.Rows)
        {
            if (last is not null && row.Context != last) table.AddEmptyRow();
            last = row.Context;
            table.AddRow(Context(row.Context), row.Kind, row.Tokens.ToString(Inv),
                row.MsPerToken.ToString(row.MsPerToken >= 10 ? "F1" : "F3", Inv), Rate(row.TokensPerSecond),
                (row.StateBytes / 1048576.0).ToString(row.StateBytes >= 1048576 ? "F0" : "F3", Inv),
                (row.WorkingSetBytes / 1048576.0).ToString("F0", Inv));
        }
        AnsiConsole.Write(table);
        Console.WriteLine("state or cache: what one step reads (matrix state B·H·Dk·Dv·4 bytes; KV cache 2·B·H·L·D·4 bytes). " +
            "RSS: the whole process, libtorch included.");
        Console.WriteLine(string.Create(Inv, $"took {r.ElapsedSeconds:F1} s"));
    }

    static string Context(long n) => n % 1048576 == 0 ? $"{n / 1048576}M" : n % 1024 == 0 ? $"{n / 1024}k" : n.ToString(Inv);

    static string[]? Split(string[]? values) =>
        values is null || values.Length == 0 ? null
        : [.. values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];

    static int[]? Ints(string[]? values, string option) => Split(values)?.Select(v =>
        int.TryParse(v, NumberStyles.Integer, Inv, out int x)
            ? x
            : throw new MnemoException($"{option}: \"{v}\" is not an integer")).ToArray();

    static void Wide() => Report.WideWhenRedirected();

    public static void KernelTable(KernelBenchReport r)
    {
        Wide();
        var m = r.Machine;
        var s = r.Settings;
        Console.WriteLine($"machine  {m.Cpu}; {m.LogicalCores} logical cores; {m.TorchThreads} libtorch threads; " +
            $"AVX-512 {(m.Avx512 ? "yes" : "no")}, AMX-BF16 {(m.AmxBf16 ? "yes" : "no")}; libtorch {m.Libtorch}, " +
            $"TorchSharp {m.TorchSharp}");
        Console.WriteLine(string.Create(Inv, $"load     1-min load average {Show(m.LoadAverageAtStart)} before the run, " +
            $"{Show(r.LoadAverageAtEnd)} at its end (the run itself adds up to its thread count; more means other work shared the cores)"));
        BusyWarning(m);
        string bf16 = r.PeakBf16 is { } b
            ? string.Create(Inv, $"; bf16 matmul {b.GflopPerSecond:F1} GFLOP/s (n={b.BestN}, " +
                $"{b.GflopPerSecond / r.PeakFp32.GflopPerSecond:F1}× fp32)")
            : "";
        Console.WriteLine(string.Create(Inv, $"peak     fp32 matmul {r.PeakFp32.GflopPerSecond:F1} GFLOP/s (n={r.PeakFp32.BestN}){bf16}"));
        Console.WriteLine(string.Create(Inv, $"shapes   B={s.Batch} H={s.Heads} Dk=Dv=D, fp32, chunk size {s.ChunkSize}; " +
            $"{s.Warmup} warm-up + median of {s.Repeats} runs; step loop timed up to T={s.StepMaxLength}"));
        if (s.DeepRules.Length > 0)
            Console.WriteLine(string.Create(Inv, $"deep     {string.Join(", ", s.DeepRules)}: memory MLP depth {s.Depth}, " +
                $"hidden {s.DeepHidden}, GELU; each form timed at the longest T whose estimated autograd footprint fits " +
                $"{s.DeepMemoryBudgetGb:F1} GB"));

        var table = new Table().AddColumns("rule", "D", "T", "form", "fwd ms", "fwd tok/s", "fwd GFLOP/s", "fwd %peak",
            "f+b ms", "f+b tok/s", "f+b GFLOP/s", "f+b %peak", "×step fwd / f+b", "×sdpa fwd / f+b", "scale fwd / f+b");
        foreach (int i in Enumerable.Range(4, 11)) table.Columns[i].RightAligned();
        bool anyExtrapolated = false;
        string? lastGroup = null;
        foreach (var row in r.Rows)
        {
            string group = $"{row.Rule}/{row.Dk}";
            if (lastGroup is not null && group != lastGroup) table.AddEmptyRow();
            lastGroup = group;
            string mark = row.Extrapolated ? "*" : "";
            anyExtrapolated |= row.Extrapolated;
            table.AddRow(row.Rule, row.Dk.ToString(Inv), row.T.ToString(Inv), row.Form,
                Ms(row.Forward.Ms) + mark, Rate(row.Forward.TokensPerSecond), row.Forward.GflopPerSecond.ToString("F1", Inv),
                Percent(row.Forward.FractionOfFp32Peak),
                Ms(row.ForwardBackward.Ms) + mark, Rate(row.ForwardBackward.TokensPerSecond),
                row.ForwardBackward.GflopPerSecond.ToString("F1", Inv), Percent(row.ForwardBackward.FractionOfFp32Peak),
                Pair(row.SpeedupOverStepForward, row.SpeedupOverStepForwardBackward),
                Pair(row.SpeedupOverSdpaForward, row.SpeedupOverSdpaForwardBackward),
                Pair(row.ScalingForward, row.ScalingForwardBackward, "F2", ""));
        }
        AnsiConsole.Write(table);
        if (anyExtrapolated)
            Console.WriteLine($"* timed at a shorter T and extrapolated linearly in T: " +
                $"the step loop at T ≤ {s.StepMaxLength} (its cost per token is constant), and the deep rules' forms noted below.");
        foreach (var note in r.Rows.Select(row => row.Note).OfType<string>().Distinct())
            Console.WriteLine($"note     {note}");
        Console.WriteLine("×step, ×sdpa: baseline time / this row's time (above 1: this row is faster). scale: " +
            "t(T) / ((T/T_prev)·t(T_prev)); 1.00 = linear in T.");
        Console.WriteLine("% peak: against the matmul peak of the row's precision; × fp32: tokens/s against the same mixer's fp32 row.");
        Console.WriteLine($"FLOP model: {r.FlopModel}");
        Console.WriteLine(string.Create(Inv, $"took {r.ElapsedSeconds:F1} s"));
    }

    /// <summary>A loud note when other work was already using the cores: such timings are slow and noisy.</summary>
    static void BusyWarning(MachineInfo m)
    {
        if (m.LoadAverageAtStart is double load && load > 0.5 * m.LogicalCores)
            Console.WriteLine(string.Create(Inv, $"WARNING  the machine was busy before the run (load {load:F2} on {m.LogicalCores} " +
                $"cores): these timings are not reliable; rerun on an idle machine"));
    }

    static string Show(double? x) => x is double v ? v.ToString("F2", Inv) : "n/a";

    static string Ms(double ms) => ms >= 100 ? ms.ToString("F0", Inv) : ms >= 10 ? ms.ToString("F1", Inv) : ms.ToString("F2", Inv);

    static string Rate(double perSecond) => perSecond >= 1e6 ? (perSecond / 1e6).ToString("F2", Inv) + "M"
        : perSecond >= 1e3 ? (perSecond / 1e3).ToString("F1", Inv) + "k" : perSecond.ToString("F0", Inv);

    static string Percent(double fraction) => (100 * fraction).ToString("F1", Inv) + "%";

    static string Pair(double? a, double? b, string? format = null, string prefix = "×") =>
        a is null && b is null ? "" : $"{prefix}{Ratio(a, format)} / {prefix}{Ratio(b, format)}";

    static string Ratio(double? x, string? format) => x is not double v ? "–"
        : format is not null ? v.ToString(format, Inv)
        : v >= 100 ? v.ToString("F0", Inv) : v >= 1 ? v.ToString("F1", Inv) : v >= 0.01 ? v.ToString("F2", Inv) : v.ToString("G2", Inv);
}
