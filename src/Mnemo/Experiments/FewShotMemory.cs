using System.Diagnostics;
using System.Numerics;
using Mnemo.IO;
using Mnemo.Layers;
using Mnemo.Models;
using Mnemo.Runtime;
using Mnemo.Tasks.LanguageModeling;
using Mnemo.Text;
using Mnemo.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Mnemo.Experiments;

/// <summary>What the studied items are made of (docs/few-shot-memory.md#the-design).</summary>
public enum StudyMaterial
{
    /// <summary>held-out sentences of the corpus, as written</summary>
    Natural,
    /// <summary>the same sentences with the characters of every word shuffled and the words in a random order</summary>
    Gibberish,
    /// <summary>words drawn uniformly from the corpus's vocabulary up to each sentence's length</summary>
    RandomWords,
}

/// <summary>The few-shot memory study's corpus, models, study and interference phases (docs/few-shot-memory.md).</summary>
public sealed record FewShotConfig : IValidatedConfig
{
    [Help("free-form description")] public string Description { get; init; } = "";
    [Help("corpus name or file (scripts/setup-corpora.sh), read as bytes; the items come from its last tenth")]
    public string Corpus { get; init; } = "austen";
    [Help("the memories compared: each is model.mixer in turn")]
    public MixerKind[] Mixers { get; init; } = [MixerKind.Attention, MixerKind.GatedDeltaNet, MixerKind.Lstm];
    public ModelConfig Model { get; init; } = new()
    {
        DModel = 128, NumLayers = 2, NumHeads = 4, Mixer = MixerKind.Attention, MlpRatio = 4, MaxPositions = 1024,
    };
    [Help("pretraining on random windows of seq_len + 1 bytes of the corpus's first nine tenths")]
    public TrainingConfig Pretraining { get; init; } = new()
    {
        Steps = 600, BatchSize = 32, Lr = 2e-3, WarmupSteps = 60, WeightDecay = 0.1, LogEvery = 200,
    };
    [Help("bytes per pretraining and interference window"), Range(2, 1 << 20)] public int SeqLen { get; init; } = 256;
    [Help("items studied; as many unstudied foils are drawn"), Range(1, 100_000)] public int Items { get; init; } = 64;
    [Help("shortest item in bytes"), Range(4, 1 << 16)] public int MinBytes { get; init; } = 64;
    [Help("longest item in bytes"), Range(4, 1 << 16)] public int MaxBytes { get; init; } = 128;
    [Help("the materials studied: natural, gibberish, random_words")]
    public StudyMaterial[] Materials { get; init; } = [StudyMaterial.Natural, StudyMaterial.RandomWords];
    [Help("times the study set is seen (epochs over it), one run from the pretrained weights each")]
    public int[] Exposures { get; init; } = [1, 2, 4, 8, 16];
    [Help("learning rate of the study and interference phases (AdamW, constant, no weight decay)"), Range(0, 10)]
    public double StudyLr { get; init; } = 1e-3;
    [Help("items per study step; windows per interference step"), Range(1, 100_000)] public int StudyBatchSize { get; init; } = 8;
    [Help("the exposure count whose run goes on to the interference phase; 0 = no retention curve"), Range(0, 1_000_000)]
    public int RetentionExposures { get; init; } = 16;
    [Help("updates on new corpus windows after the study; the items are re-tested after 1, 2, 4, … of them"), Range(0, 10_000_000)]
    public int InterferenceSteps { get; init; } = 256;

    public IEnumerable<(string, string)> Validate()
    {
        if (Mixers.Length == 0) yield return ("mixers", "name at least one mixer");
        if (Materials.Length == 0) yield return ("materials", "name at least one of natural, gibberish, random_words");
        if (Exposures.Length == 0 || Exposures.Any(e => e < 1)) yield return ("exposures", "give at least one count, each ≥ 1");
        if (MinBytes > MaxBytes) yield return ("min_bytes", $"{MinBytes} is more than max_bytes ({MaxBytes})");
        if (RetentionExposures > 0 && !Exposures.Contains(RetentionExposures))
            yield return ("retention_exposures", $"{RetentionExposures} is not one of exposures [{string.Join(", ", Exposures)}]");
        if (Corpora.Problem(Corpus, strict: false) is { } problem) yield return ("corpus", problem);
    }

    /// <summary>A config file over the defaults above, then "field=value" overrides (see <see cref="ConfigBinder.LoadOver"/>).</summary>
    public static FewShotConfig Load(string? file, IEnumerable<string>? overrides = null) =>
        ConfigBinder.LoadOver(new FewShotConfig(), file, overrides ?? [], "the default few-shot config");

    public string ToJson() => ConfigBinder.ToJson(this);
}

/// <summary>One test of a study set.</summary>
/// <param name="Exposures">times the set was seen (0 = the pretrained model, before any study)</param>
/// <param name="Delay">interference updates after the study (0 = straight after it)</param>
/// <param name="Recognition">share of studied items whose loss is lower than their paired foil's (chance 0.5)</param>
/// <param name="Recall">mean ROUGE-L F1 of the greedy completion of each studied item's second half, cued by its first</param>
/// <param name="RecallWhole">the same with the cue included on both sides, as the paper's code scores it</param>
/// <param name="Verbatim">share of studied items whose completion is their second half, byte for byte</param>
/// <param name="Studied">mean loss of the studied items, bits per byte</param>
/// <param name="Foils">mean loss of the foils, bits per byte</param>
public sealed record FewShotResult(int Seed, string Mixer, StudyMaterial Material, int Exposures, int Delay, double Recognition,
    double Recall, double RecallWhole, double Verbatim, double Studied, double Foils);

/// <summary>A study set and its foils, as byte strings.</summary>
public sealed record StudySet(StudyMaterial Material, string[] Studied, string[] Foils);

/// <summary>
/// Orhan 2023, "Recognition, recall, and retention of few-shot memories in large language models" (docs/few-shot-memory.md),
/// at CPU scale: a byte-level language model pretrained on a corpus studies a set of held-out items for n exposures, is
/// tested for recognition (two-alternative forced choice by loss against an unstudied foil) and recall (greedy completion
/// from the first half), then trains on new corpus text and is re-tested as the updates accumulate.
/// </summary>
public static class FewShotMemory
{
    public static List<FewShotResult> Run(FewShotConfig c, IReadOnlyList<int> seeds, Action<string>? log = null)
    {
        var corpus = Corpora.Load(c.Corpus);
        if (corpus.Note is { } note) log?.Invoke($"note: {note}");
        var split = LanguageModeling.Split(corpus.Name, corpus.Text, 0.1, ByteTokenizer.Instance);
        string trainText = corpus.Text[..split.HeldOutStart];
        var results = new List<FewShotResult>();
        // One guard for the whole run: each study, test and interference phase starts a new training loop (whose own
        // guard starts from the memory it finds), and the completions' ever-changing shapes fragment the heap.
        var memory = new ResidentGuard(ResidentGuard.TrainingSlack);
        foreach (int seed in seeds)
        {
            var sets = c.Materials.Select(m => Items(corpus.Text[split.HeldOutStart..], trainText, c, m, SeedMixer.Derive(seed, 1)))
                .ToArray();
            foreach (var mixer in c.Mixers)
                results.AddRange(OneModel(c, split.Train, sets, mixer, seed, memory, log));
        }
        return results;
    }

    static List<FewShotResult> OneModel(FewShotConfig c, int[] train, StudySet[] sets, MixerKind mixer, int seed,
        ResidentGuard memory, Action<string>? log)
    {
        string name = Names.Of(mixer);
        var clock = Stopwatch.StartNew();
        TorchRuntime.Seed(SeedMixer.Derive(seed, 2));
        using var model = new LanguageModel(c.Model with { Mixer = mixer, VocabSize = ByteTokenizer.Instance.VocabSize });
        var windows = new Random(SeedMixer.Derive(seed, 3));
        FitLoop.Run(model, c.Pretraining with { Seed = seed }, $"{name} pretraining",
            _ => MaskedLoss(model, RandomWindows(train, c.SeqLen + 1, c.Pretraining.BatchSize, windows)).Mean,
            (step, loss) => log?.Invoke(
                $"{name} seed {seed}: pretraining step {step}/{c.Pretraining.Steps}, loss {loss / Math.Log(2):F3} bits/byte"));
        using var pretrained = new WeightSnapshot(model);
        var results = new List<FewShotResult>();
        void Record(FewShotResult r)
        {
            memory.Check();
            results.Add(r);
            log?.Invoke($"{name} seed {seed} {Names.Of(r.Material)} × {r.Exposures}" + (r.Delay > 0 ? $" + {r.Delay} updates" : "") +
                $": recognition {100 * r.Recognition:F1}%, recall ROUGE-L {r.Recall:F3}, verbatim {100 * r.Verbatim:F1}% " +
                $"(studied {r.Studied:F3} / foils {r.Foils:F3} bits/byte; {clock.Elapsed.TotalSeconds:F0} s)");
        }
        foreach (var set in sets)
        {
            Record(Test(model, set, seed, name, 0, 0));
            foreach (int n in c.Exposures)
            {
                pretrained.Restore(model);
                Study(model, c, set, n, seed);
                Record(Test(model, set, seed, name, n, 0));
                if (n == c.RetentionExposures && c.InterferenceSteps > 0)
                    Interfere(model, c, train, seed, delay => Record(Test(model, set, seed, name, n, delay)));
            }
        }
        pretrained.Restore(model);
        return results;
    }

    /// <summary>n exposures: n epochs over the study set, each in a fresh seeded order, study_batch_size items per step.</summary>
    static void Study(LanguageModel model, FewShotConfig c, StudySet set, int exposures, int seed)
    {
        var rng = new Random(SeedMixer.Derive(seed, 4, exposures));
        int[] order = [.. Enumerable.Range(0, exposures).SelectMany(_ => Enumerable.Range(0, set.Studied.Length).OrderBy(_ => rng.Next()))];
        int perEpoch = (set.Studied.Length + c.StudyBatchSize - 1) / c.StudyBatchSize;
        var t = Constant(c, exposures * perEpoch, seed);
        FitLoop.Run(model, t, $"study × {exposures}", step =>
        {
            int epoch = step / perEpoch, first = (step % perEpoch) * c.StudyBatchSize;
            int count = Math.Min(c.StudyBatchSize, set.Studied.Length - first);
            var rows = order.AsSpan(epoch * set.Studied.Length + first, count).ToArray().Select(i => set.Studied[i]);
            return MaskedLoss(model, Rows(rows)).Mean;
        });
    }

    /// <summary>Trains on random new windows of the corpus for interference_steps updates, calling <paramref name="test"/>
    /// after 1, 2, 4, … updates and after the last.</summary>
    static void Interfere(LanguageModel model, FewShotConfig c, int[] train, int seed, Action<int> test)
    {
        var windows = new Random(SeedMixer.Derive(seed, 5));
        var t = Constant(c, c.InterferenceSteps, seed) with { LogEvery = 1 };
        FitLoop.Run(model, t, "interference",
            _ => MaskedLoss(model, RandomWindows(train, c.SeqLen + 1, c.StudyBatchSize, windows)).Mean,
            (done, _) =>
            {
                if (BitOperations.IsPow2(done) || done == c.InterferenceSteps) test(done);
            });
    }

    /// <summary>The study and interference phases' optimiser: AdamW at study_lr throughout, no decay, clipping as pretraining.</summary>
    static TrainingConfig Constant(FewShotConfig c, int steps, int seed) => c.Pretraining with
    {
        Steps = steps,
        Lr = c.StudyLr,
        WarmupSteps = 0,
        MinLrRatio = 1,
        WeightDecay = 0,
        Seed = seed,
        LogEvery = Math.Max(1, steps),
    };

    /// <summary>Recognition and recall of the study set by the model as it is now.</summary>
    public static FewShotResult Test(LanguageModel model, StudySet set, int seed, string mixer, int exposures, int delay)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            double[] studied = ItemBits(model, set.Studied), foils = ItemBits(model, set.Foils);
            double recognition = studied.Zip(foils).Count(p => p.First < p.Second) / (double)studied.Length;
            var cues = set.Studied.Select(s => s[..(s.Length / 2)]).ToArray();
            var completed = Complete(model, cues, [.. set.Studied.Select(s => s.Length - s.Length / 2)]);
            var completions = completed.Select(ByteTokenizer.Instance.Decode).ToArray();           // a stray byte ≥ 128 reads as U+FFFD
            double recall = set.Studied.Select((s, i) => Rouge.L(completions[i], s[cues[i].Length..])).Average();
            double whole = set.Studied.Select((s, i) => Rouge.L(cues[i] + completions[i], s)).Average();
            double verbatim = set.Studied.Where((s, i) => completed[i].SequenceEqual(ByteTokenizer.Instance.Encode(s[cues[i].Length..])))
                .Count() / (double)studied.Length;
            return new FewShotResult(seed, mixer, set.Material, exposures, delay, recognition, recall, whole, verbatim,
                studied.Average(), foils.Average());
        }
        finally
        {
            model.train(wasTraining);
        }
    }

    /// <summary>
    /// The study set and foils of one material: 2 × items distinct held-out sentences of min_bytes to max_bytes ASCII
    /// characters that the training text does not contain, drawn in a seeded order (the same sentences for every
    /// material), the first half studied; then made into the material.
    /// </summary>
    public static StudySet Items(string heldOut, string trainText, FewShotConfig c, StudyMaterial material, int seed)
    {
        var rng = new Random(seed);
        var sentences = Sentences.Split(heldOut).Distinct()
            .Where(s => s.Length >= c.MinBytes && s.Length <= c.MaxBytes && s.All(char.IsAscii)
                && !trainText.Contains(s, StringComparison.Ordinal))
            .OrderBy(_ => rng.Next()).ToArray();
        if (sentences.Length < 2 * c.Items)
            throw new MnemoException($"items: the held-out text has {sentences.Length} new sentences of {c.MinBytes}–{c.MaxBytes} " +
                $"bytes; the study needs {2 * c.Items} (lower items, widen min_bytes / max_bytes, or use a longer corpus)");
        var made = new Random(SeedMixer.Derive(seed, (int)material));
        string[] vocabulary = material == StudyMaterial.RandomWords
            ? [.. Rouge.Words(trainText).Where(w => w.Length > 2 && !w.Any(char.IsDigit)).Distinct().Order(StringComparer.Ordinal)]
            : [];
        string Make(string s) => material switch
        {
            StudyMaterial.Natural => s,
            StudyMaterial.Gibberish => string.Join(' ', s.Split(' ').Select(w => new string([.. w.OrderBy(_ => made.Next())]))
                .OrderBy(_ => made.Next())),
            _ => RandomWords(vocabulary, s.Length, made),
        };
        var items = sentences[..(2 * c.Items)].Select(Make).ToArray();
        return new StudySet(material, items[..c.Items], items[c.Items..]);
    }

    /// <summary>Words drawn uniformly from <paramref name="vocabulary"/>, space-separated, while the next one fits in
    /// <paramref name="length"/> characters (at least one).</summary>
    static string RandomWords(string[] vocabulary, int length, Random rng)
    {
        var text = new System.Text.StringBuilder(vocabulary[rng.Next(vocabulary.Length)]);
        for (string next = vocabulary[rng.Next(vocabulary.Length)]; text.Length + 1 + next.Length <= length;
             next = vocabulary[rng.Next(vocabulary.Length)])
            text.Append(' ').Append(next);
        return text.ToString();
    }

    /// <summary><paramref name="count"/> windows of <paramref name="length"/> tokens at uniform random starts.</summary>
    static int[][] RandomWindows(int[] tokens, int length, int count, Random rng) =>
        [.. Enumerable.Range(0, count).Select(_ => tokens.AsSpan(rng.Next(tokens.Length - length + 1), length).ToArray())];

    static int[][] Rows(IEnumerable<string> items) => [.. items.Select(ByteTokenizer.Instance.Encode)];

    /// <summary>
    /// Next-token cross-entropy (nats) of rows of different lengths, right-padded into one batch (causal, so the padding
    /// changes nothing before it): the mean over every real predicted token of the batch, and each row's own mean.
    /// </summary>
    static (Tensor Mean, Tensor PerRow) MaskedLoss(LanguageModel model, int[][] rows)
    {
        int longest = rows.Max(r => r.Length);
        var values = new long[rows.Length * longest];
        var mask = new float[rows.Length * (longest - 1)];
        for (int i = 0; i < rows.Length; i++)
        {
            for (int j = 0; j < rows[i].Length; j++) values[i * longest + j] = rows[i][j];
            for (int j = 0; j < rows[i].Length - 1; j++) mask[i * (longest - 1) + j] = 1;
        }
        var batch = tensor(values).view(rows.Length, longest);                                         // [N, L]
        var labels = batch.narrow(1, 1, longest - 1);
        var logits = model.forward(batch.narrow(1, 0, longest - 1));                                    // [N, L − 1, V]
        var loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction: nn.Reduction.None)
            .view(labels.shape);                                                                        // [N, L − 1]
        var m = tensor(mask).view(rows.Length, longest - 1);
        var perRow = (loss * m).sum(1) / m.sum(1);
        return ((loss * m).sum() / m.sum(), perRow);
    }

    /// <summary>Each item's mean loss over its predicted bytes, in bits per byte.</summary>
    internal static double[] ItemBits(LanguageModel model, string[] items)
    {
        var bits = new List<double>();
        foreach (var chunk in items.Chunk(64))
        {
            using var scope = NewDisposeScope();
            bits.AddRange(MaskedLoss(model, Rows(chunk)).PerRow.data<float>().ToArray().Select(x => x / Math.Log(2)));
        }
        return [.. bits];
    }

    /// <summary>
    /// Greedy completions of many cues at once: each step runs the batch of cues-so-far (right-padded; causal, so the
    /// padding is never read) and appends each row's most likely next byte, until row i has <paramref name="lengths"/>[i].
    /// </summary>
    /// <returns>each cue's completion, as byte ids</returns>
    public static int[][] Complete(LanguageModel model, string[] cues, int[] lengths)
    {
        var rows = cues.Select(s => ByteTokenizer.Instance.Encode(s).Select(x => (long)x).ToList()).ToArray();
        var added = new int[rows.Length];
        using var noGrad = no_grad();
        for (int step = 0; step < lengths.DefaultIfEmpty(0).Max(); step++)
        {
            int[] active = [.. Enumerable.Range(0, rows.Length).Where(i => added[i] < lengths[i])];
            foreach (var chunk in active.Chunk(64))
            {
                using var scope = NewDisposeScope();
                int longest = chunk.Max(i => rows[i].Count);
                var values = new long[chunk.Length * longest];
                for (int r = 0; r < chunk.Length; r++) rows[chunk[r]].CopyTo(values, r * longest);
                var logits = model.forward(tensor(values).view(chunk.Length, longest));                 // [n, L, V]
                var last = tensor(chunk.Select(i => (long)rows[i].Count - 1).ToArray());
                var next = logits[arange(chunk.Length), last].argmax(-1).data<long>().ToArray();        // [n]
                for (int r = 0; r < chunk.Length; r++)
                {
                    rows[chunk[r]].Add(next[r]);
                    added[chunk[r]]++;
                }
            }
        }
        return [.. rows.Select((r, i) => r.Skip(cues[i].Length).Select(x => (int)x).ToArray())];
    }
}
